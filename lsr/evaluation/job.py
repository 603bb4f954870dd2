"""The evaluation job: generate summaries over Ray Data, score them, and lay the results out like Table 2.

Generation runs in a Ray Data actor pool (each actor loads the model once) with the data set's beam-search
preset, so training's validation and this evaluation decode the same way (both call
:func:`lsr.model.generate.generate`). What is measured is the metric registry's
(:mod:`lsr.evaluation.metrics.registry`): per-example metrics (ROUGE-1/2/Lsum F1, BERTScore F1, semantic
similarity, entailment when an NLI model is given) are scored on the driver and averaged; per-model ones
(parameter count, latency) are measured apart (:mod:`lsr.evaluation.profile`). Every model gets a row in
``results.md`` / ``results.json`` and its generated summaries in ``<name>/predictions.parquet``; every path
goes through :mod:`lsr.core.storage`, so the output may be ``s3://``, and a ``--model`` may be an ``s3://``
folder (listed once here, downloaded into each node's cache by the actors that load it:
:mod:`lsr.core.model_cache`).

An AS-ES student (:mod:`lsr.ases.student`: a run trained with ``--objective as-es``, or ``ES_DIR+AS_DIR`` for the
dual variant) writes its chain turn by turn (:func:`lsr.ases.evaluation.generate_ases_predictions`); its final
summary is scored like any model's and its rationale is kept in the predictions file's ``rationale`` column. Its
per-model figures are summed over its checkpoints and its latency is not timed
(:func:`lsr.evaluation.profile.profile_checkpoints_on_ray`).

``pandas``, ``pyarrow`` and the lsr modules that need them are imported inside the functions that use them, so that
importing this module for one of its functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsr.ases.evaluation import generate_ases_predictions
from lsr.ases.student import AsEsStudent, as_es_student
from lsr.core.console import Progress
from lsr.core.model_cache import model_source
from lsr.core.storage import filesystem
from lsr.data.layout import PREDICTIONS_FILE
from lsr.evaluation.config import EvaluateConfig
from lsr.evaluation.generation import generate_summaries
from lsr.evaluation.metrics.registry import metrics, records, resolve_all
from lsr.evaluation.results import ModelResult, model_names, write_tables
from lsr.model.checkpoint_checks import check_checkpoint

if TYPE_CHECKING:
    import pandas as pd
    import ray.data

    from lsr.data.io import InputReport


@dataclass(frozen=True)
class Checked:
    """What :func:`check_inputs` resolved: what each metric needs (by name; ``None``: not measured) and the stage
    columns a forced run carries."""

    resolved: dict[str, Any]
    stage_columns: list[str]


def check_inputs(config: EvaluateConfig) -> Checked:
    """Everything that can be checked before Ray starts: checkpoints, scoring models, the data's columns."""
    from lsr.evaluation.data_guard import check_test_data

    for _, path in model_names(config.models):
        student = as_es_student(path)
        for checkpoint in student.paths if student else [path]:
            check_checkpoint(checkpoint)
    resolved = resolve_all(config)
    return Checked(resolved=resolved, stage_columns=check_test_data(config.data, force=config.force))


def score_predictions(predictions: Sequence[str], references: Sequence[str],
                      resolved: Mapping[str, Any]) -> dict[str, list[float]]:
    """Per column key, one score per example, from every per-example metric measured this run."""
    scores: dict[str, list[float]] = {}
    for metric in metrics("example"):
        if resolved.get(metric.name) is not None:
            scores.update(metric.score(predictions, references, resolved[metric.name]))
    return scores


def evaluate(config: EvaluateConfig) -> list[ModelResult]:
    """Generate with every model on the same examples, score, and write the tables and predictions."""
    from lsr.core.ray_utils import init_ray
    from lsr.data.io import read_documents

    checked = check_inputs(config)  # before Ray starts: a wrong --model or --data is one line, at once
    init_ray(address=config.ray_address)
    ds, report = read_documents(config.data, limit=config.limit or None)  # the first --limit rows, in file order
    ds = ds.materialize()
    named = model_names(config.models)
    bar = Progress("documents summarised", total=ds.count() * len(named))
    evaluated = [evaluate_model(name, path, ds, config, checked.resolved, bar) for name, path in named]
    bar.close()
    results = [result for result, _ in evaluated]
    meta = run_meta(config, checked, report, results, devices=[profile["device"] for _, profile in evaluated])
    write_tables(results, config.output.rstrip("/"), config.dataset, meta)
    return results


def evaluate_model(name: str, path: str, ds: ray.data.Dataset, config: EvaluateConfig, resolved: Mapping[str, Any],
                   bar: Progress) -> tuple[ModelResult, dict[str, Any]]:
    """One model's row and its profile: generate, score per example, keep the predictions, measure the model."""
    student = as_es_student(path)
    table = _collect(predict(ds, path, student, config), bar).sort_values("id").reset_index(drop=True)
    scores = score_predictions(table["prediction"].tolist(), table["summary"].tolist(), resolved)
    for key, values in scores.items():
        table[key] = values
    predictions = write_predictions(table, config.output, name)
    profile = profile_student(path, student, table["document"].tolist(), config, resolved)
    extra = {"ases_variant": student.variant} if student else {}
    return model_result(name, path, len(table), predictions, scores, profile, extra), profile


def predict(ds: ray.data.Dataset, path: str, student: AsEsStudent | None, config: EvaluateConfig) -> ray.data.Dataset:
    """``ds`` with each document's ``prediction`` (and, for an AS-ES student, its ``rationale``), lazily."""
    options = {"source_max_tokens": config.source_max_tokens, "batch_size": config.batch_size,
               "generation_kwargs": config.generation.as_generate_kwargs(), "concurrency": config.concurrency,
               "num_gpus": _num_gpus(config)}
    if student is None:
        return generate_summaries(ds, model_source(path), **options)
    as_model = student.as_model and model_source(student.as_model)
    return generate_ases_predictions(ds, model_source(student.es_model), as_model, **options)


def write_predictions(table: pd.DataFrame, output: str, name: str) -> str:
    """``<output>/<name>/predictions.parquet`` (local or ``s3://``); returns its path as results.json records it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = output.rstrip("/")
    fs, inner = filesystem(out)
    fs.create_dir(f"{inner}/{name}", recursive=True)
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), f"{inner}/{name}/{PREDICTIONS_FILE}",
                   filesystem=fs)
    return f"{out}/{name}/{PREDICTIONS_FILE}"


def profile_student(path: str, student: AsEsStudent | None, documents: list[str], config: EvaluateConfig,
                    resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The per-model metrics' figures and the device they were measured on (an AS-ES student: all checkpoints)."""
    from lsr.evaluation.profile import profile_checkpoints_on_ray, profile_on_ray

    if student is not None:
        return profile_checkpoints_on_ray([model_source(p) for p in student.paths], resolved=resolved,
                                          num_gpus=_num_gpus(config))
    return profile_on_ray(model_source(path), documents, source_max_tokens=config.source_max_tokens,
                          generation_kwargs=config.generation.as_generate_kwargs(), resolved=resolved,
                          num_gpus=_num_gpus(config))


def model_result(name: str, path: str, examples: int, predictions: str, scores: Mapping[str, Sequence[float]],
                 profile: Mapping[str, Any], extra: dict[str, Any]) -> ModelResult:
    """A model's row: the mean of each per-example score, and each per-model figure as measured."""
    values: dict[str, Any] = {key: _mean(column) for key, column in scores.items()}
    for metric in metrics("model"):
        values.update({key: profile[key] for key in metric.keys if key in profile})
    return ModelResult(name=name, path=path, examples=examples, predictions=predictions, values=values, extra=extra)


def run_meta(config: EvaluateConfig, checked: Checked, report: InputReport, results: Sequence[ModelResult],
             devices: Sequence[str]) -> dict[str, Any]:
    """``results.json``'s top-level keys: the data, the generation settings, and what each metric was run with."""
    return {
        "dataset": config.dataset,
        "data": config.data,
        "examples": results[0].examples if results else 0,
        "input": report.to_dict(),
        "data_guard_overridden": checked.stage_columns,
        "generation": config.generation.as_generate_kwargs(),
        "source_max_tokens": config.source_max_tokens,
        **records(checked.resolved),
        # results.json's name for the device the per-model metrics ran on (latency is the figure it qualifies).
        "latency_device": devices[0] if devices else None,
    }


def _num_gpus(config: EvaluateConfig) -> int:
    return 1 if config.gpu else 0


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if len(values) else None


def _collect(generated: ray.data.Dataset, bar: Progress) -> pd.DataFrame:
    """The generated rows as one DataFrame, advancing ``bar`` by each batch as it arrives."""
    import pandas as pd

    frames = []
    for batch in generated.iter_batches(batch_format="pandas"):
        frames.append(batch)
        bar.advance(len(batch))
    return pd.concat(frames, ignore_index=True) if frames else generated.to_pandas()
