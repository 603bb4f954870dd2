"""The evaluation job: generate summaries over Ray Data, score them, and lay the results out like Table 2.

Generation runs in a Ray Data actor pool (each actor loads the model once) with the data set's beam-search
preset, so training's validation and this evaluation decode the same way
(:func:`lsr.evaluation.generation.generate_batch` is shared). Scores are per example (ROUGE-1/2/Lsum F1,
BERTScore F1, semantic similarity, entailment when an NLI model is given) and averaged; each model's
parameter count and latency are measured apart (:mod:`lsr.evaluation.profile`). Every model gets a row in
``results.md`` / ``results.json`` and its generated summaries in ``<name>/predictions.parquet``; every path
goes through :mod:`lsr.core.storage`, so the output may be ``s3://``, and a ``--model`` may be an ``s3://``
folder (listed once here, downloaded into each node's cache by the actors that load it:
:mod:`lsr.core.model_cache`).

An AS-ES student (:mod:`lsr.ases.student`: a run trained with ``--objective as-es``, or ``ES_DIR+AS_DIR`` for the
dual variant) writes its chain turn by turn (:func:`lsr.ases.evaluation.generate_ases_predictions`); its final
summary is scored like any model's and its rationale is kept in the predictions file's ``rationale`` column. Its
parameter count is that of all its checkpoints; its latency is not timed (a chain is several ``generate`` calls,
not comparable with one summary's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from lsr.ases.evaluation import generate_ases_predictions
from lsr.ases.student import AsEsStudent, as_es_student
from lsr.core.console import Progress
from lsr.core.model_cache import model_source
from lsr.core.storage import filesystem
from lsr.evaluation.config import EvaluateConfig
from lsr.evaluation.generation import check_checkpoint, generate_summaries
from lsr.evaluation.results import PREDICTIONS_FILE, ModelResult, model_names, write_tables

if TYPE_CHECKING:
    import pandas as pd
    import ray.data

    from lsr.evaluation.metrics import BertScoreModel
    from lsr.evaluation.semantic import NliModel


@dataclass(frozen=True)
class Checked:
    """What :func:`check_inputs` resolved: the scoring models to use and the stage columns a forced run carries."""

    bertscore: BertScoreModel | None
    similarity: str | None
    nli: NliModel | None
    stage_columns: list[str]


def check_inputs(config: EvaluateConfig) -> Checked:
    """Everything that can be checked before Ray starts: checkpoints, scoring models, the data's columns."""
    from lsr.evaluation.data_guard import check_test_data
    from lsr.evaluation.metrics import resolve_bertscore_model
    from lsr.evaluation.semantic import resolve_nli_model, similarity_model_path

    for _, path in model_names(config.models):
        student = as_es_student(path)
        for checkpoint in student.paths if student else [path]:
            check_checkpoint(checkpoint)
    bertscore = resolve_bertscore_model(config.bertscore_model, config.bertscore_layers) if config.bertscore else None
    return Checked(
        bertscore=bertscore,
        similarity=similarity_model_path() if config.similarity else None,
        nli=resolve_nli_model(config.nli_model) if config.nli_model else None,
        stage_columns=check_test_data(config.data, force=config.force),
    )


def score_predictions(
    predictions: Sequence[str],
    references: Sequence[str],
    bertscore_model: Any | None,
    bertscore_batch_size: int = 32,
    *,
    similarity_model: str | None = None,
    nli_model: Any | None = None,
) -> list[dict[str, float]]:
    """Per example ROUGE-1/2/Lsum F1 and, for each model given, BERTScore F1, similarity and entailment."""
    from lsr.evaluation.metrics import bertscore_f1, rouge_scores
    from lsr.evaluation.semantic import entailment, similarity

    rows = rouge_scores(predictions, references)
    extra: dict[str, list[float]] = {}
    if bertscore_model is not None:
        extra["bertscore"] = bertscore_f1(predictions, references, bertscore_model, batch_size=bertscore_batch_size)
    if similarity_model is not None:
        extra["similarity"] = similarity(predictions, references, similarity_model)
    if nli_model is not None:
        extra["entailment"] = entailment(predictions, references, nli_model)
    for key, values in extra.items():
        for row, value in zip(rows, values, strict=True):
            row[key] = value
    return rows


def evaluate(config: EvaluateConfig) -> list[ModelResult]:
    """Generate with every model on the same examples, score, and write the tables and predictions."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lsr.core.ray_utils import init_ray
    from lsr.data.io import read_documents
    from lsr.evaluation.metrics import mean_scores
    from lsr.evaluation.profile import profile_on_ray

    checked = check_inputs(config)  # before Ray starts: a wrong --model or --data is one line, at once
    init_ray(address=config.ray_address)
    generation_kwargs = config.generation.as_generate_kwargs()
    source_max_tokens = config.source_max_tokens
    named = model_names(config.models)
    bertscore_model, similarity_model, nli_model = checked.bertscore, checked.similarity, checked.nli

    ds, report = read_documents(config.data, limit=config.limit or None)  # the first --limit rows, in file order
    ds = ds.materialize()
    num_gpus = 1 if config.gpu else 0
    out = config.output.rstrip("/")
    fs, inner = filesystem(out)
    results: list[ModelResult] = []
    profiles: dict[str, dict[str, Any]] = {}
    bar = Progress("documents summarised", total=ds.count() * len(named))
    for name, path in named:
        student = as_es_student(path)
        generate = generate_summaries if student is None else partial(
            generate_ases_predictions, as_model=student.as_model and model_source(student.as_model)
        )
        generated = generate(
            ds,
            model_source(path if student is None else student.es_model),
            source_max_tokens=source_max_tokens,
            generation_kwargs=generation_kwargs,
            batch_size=config.batch_size,
            concurrency=config.concurrency,
            num_gpus=num_gpus,
        )
        table = _collect(generated, bar).sort_values("id").reset_index(drop=True)
        scores = score_predictions(table["prediction"].tolist(), table["summary"].tolist(), bertscore_model,
                                   similarity_model=similarity_model, nli_model=nli_model)
        for key in scores[0]:
            table[key] = [row[key] for row in scores]
        fs.create_dir(f"{inner}/{name}", recursive=True)
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), f"{inner}/{name}/{PREDICTIONS_FILE}",
                       filesystem=fs)
        if student is None:
            profile = profile_on_ray(model_source(path), table["document"].tolist(),
                                     source_max_tokens=source_max_tokens, generation_kwargs=generation_kwargs,
                                     batches=config.latency_batches,
                                     num_gpus=num_gpus)
        else:
            profile = _ases_profile(student, num_gpus)
        profiles[name] = profile
        means = mean_scores(scores)
        results.append(
            ModelResult(
                name=name,
                path=path,
                examples=len(table),
                rouge1=means["rouge1"],
                rouge2=means["rouge2"],
                rougeLsum=means["rougeLsum"],
                bertscore=means.get("bertscore"),
                predictions=f"{out}/{name}/{PREDICTIONS_FILE}",
                similarity=means.get("similarity"),
                entailment=means.get("entailment"),
                parameters=profile["parameters"],
                latency_b1_p50=profile["latency_b1_p50"],
                latency_b16_p50=profile["latency_b16_p50"],
                extra={"ases_variant": student.variant} if student else {},
            )
        )
    bar.close()
    meta = {
        "dataset": config.dataset,
        "data": config.data,
        "examples": results[0].examples if results else 0,
        "input": report.to_dict(),
        "data_guard_overridden": checked.stage_columns,
        "generation": generation_kwargs,
        "source_max_tokens": source_max_tokens,
        "bertscore_model": bertscore_model.path if bertscore_model else None,
        "bertscore_layer": bertscore_model.num_layers if bertscore_model else None,
        "similarity_model": similarity_model,
        "nli_model": nli_model.path if nli_model else None,
        "latency_batches": config.latency_batches,
        "latency_device": next(iter(profiles.values()))["device"] if profiles else None,
    }
    write_tables(results, out, config.dataset, meta)
    return results


def _ases_profile(student: AsEsStudent, num_gpus: float) -> dict[str, Any]:
    """An AS-ES student's parameters (all its checkpoints); latency untimed (module docstring)."""
    from lsr.evaluation.profile import profile_on_ray

    figures = [profile_on_ray(model_source(path), [], source_max_tokens=1, generation_kwargs={}, batches=0,
                              num_gpus=num_gpus) for path in student.paths]
    return {"parameters": sum(f["parameters"] for f in figures), "device": figures[0]["device"],
            "latency_b1_p50": None, "latency_b16_p50": None}


def _collect(generated: ray.data.Dataset, bar: Progress) -> pd.DataFrame:
    """The generated rows as one DataFrame, advancing ``bar`` by each batch as it arrives."""
    import pandas as pd

    frames = []
    for batch in generated.iter_batches(batch_format="pandas"):
        frames.append(batch)
        bar.advance(len(batch))
    return pd.concat(frames, ignore_index=True) if frames else generated.to_pandas()
