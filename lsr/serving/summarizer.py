"""The served model without Ray: loading, generation settings, batched summaries, and what ``GET /model`` shows.

Generation is every stage's (:func:`lsr.model.generate.generate` on a model loaded by
:func:`lsr.model.generate.load_summarizer`) with the data set's preset, so a served summary equals the summary
``lsr evaluate`` writes for the same document and settings. A batch from ``@serve.batch`` may mix requests with
different settings; :meth:`ServedModel.summarize` runs one ``generate`` per distinct setting, in arrival order.

An AS-ES student (:mod:`lsr.ases.student`: its run trained ``--objective as-es``, or ``ES_DIR+AS_DIR`` for the
dual variant) writes its chain turn by turn (:func:`lsr.ases.generate.generate_chains`, as ``lsr evaluate``
does); its summary is the chain's last one, and ``explain`` answers its own rationale
(:func:`lsr.ases.explain.explain`: aspects, associated sentences located in the document, triples) instead of
the MWF gates. A model that is neither (plain fine-tuning, no views) has nothing to explain: ``explain: true``
is refused with 422 (:meth:`ServedModel.check_explain`), and ``GET /model`` says what a model explains.

``torch`` and the lsr modules that need them are imported inside the functions that use them, so that importing this
module for one of its functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsr.core.errors import InputError
from lsr.data.layout import TRAIN_REPORT
from lsr.evaluation.metrics.parameters import parameter_count
from lsr.model.checkpoint_checks import check_checkpoint
from lsr.model.generate import generate, load_summarizer
from lsr.serving.config import ServeConfig
from lsr.serving.schema import RequestError


@dataclass(frozen=True)
class Document:
    """One batch item: a document and the generation settings its request resolved to."""

    text: str
    generation: tuple[tuple[str, Any], ...]
    enqueued_at: float = field(default_factory=time.perf_counter, compare=False)


@dataclass(frozen=True)
class Generated:
    summary: str
    input_tokens: int
    batch_size: int
    queue_ms: float
    generate_ms: float
    #: An AS-ES student's generated chain (:class:`lsr.ases.generate.Generated`); None for other students.
    chain: Any = None


@dataclass(frozen=True)
class ModelCard:
    """A loaded model's request-side facts: enough to resolve and check a request's settings without the model.

    The HTTP ingress gets one from a model replica and validates requests itself, so a bad request is answered
    without reaching a replica and a retried request is resolved once."""

    model_id: str
    base_generation: dict[str, Any]
    #: An AS-ES student (its turns are decoded with :func:`lsr.ases.generate.turn_generation`'s settings).
    student: bool
    #: What ``explain: true`` answers: ``"rationale"`` (AS-ES), ``"gates"`` (MWF views), or None.
    explains: str | None
    source_max_tokens: int
    gates: dict[str, list[float]]

    def generation_for(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The preset's settings with the server's and the request's overrides; refuses min > max."""
        settings = {**self.base_generation, **overrides}
        if self.student:  # the settings a chain's turns are decoded with, as the answer reports them
            from lsr.ases.generate import turn_generation

            settings = turn_generation(settings)
        low, high = settings.get("min_new_tokens", 0), settings.get("max_new_tokens")
        if high is not None and low > high:
            raise RequestError(422, f"min_new_tokens {low} exceeds max_new_tokens {high}")
        if settings["num_beams"] == 1:
            settings.pop("early_stopping", None)  # a beam-search-only flag: greedy decoding warns about it
        return settings

    def check_explain(self) -> None:
        """Refuse ``explain: true`` (422) for a model that has neither gates nor a rationale to show."""
        if self.explains is None:
            raise RequestError(422, f"explain: model {self.model_id} has nothing to explain (it is neither an MWF "
                               "student with gates nor an AS-ES student with a rationale); ask without explain")


def training_metadata(model_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``train_report.json`` (one level above ``model/``), or ``None`` for a model not from ``lsr train``.

    For a dual AS-ES student (``ES_DIR+AS_DIR``) it is the ES model's run."""
    from lsr.ases.student import as_es_student
    from lsr.core.model_cache import local_checkpoint

    student = as_es_student(str(model_dir))
    path = Path(local_checkpoint(str(student.es_model if student else model_dir))).resolve().parent / TRAIN_REPORT
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: unreadable training report ({err})") from None


def resolve_dataset(config: ServeConfig, training: dict[str, Any] | None) -> str:
    """The generation preset: the config's, else the one the model was trained with."""
    if config.dataset:
        return config.dataset
    # ``config`` is the key ``lsr train`` writes; ``settings`` the one of runs written by earlier versions, still read.
    recorded = (training or {}).get("config") or (training or {}).get("settings") or {}
    dataset = recorded.get("dataset")
    if dataset in ("cnndm", "xsum"):
        return dataset
    raise InputError(f"{config.model}: no {TRAIN_REPORT} names the data set; give --dataset cnndm or xsum")


def model_id(config: ServeConfig) -> str:
    """The name answers carry: the config's, else the run's folder name (as ``lsr evaluate`` names models)."""
    from lsr.evaluation.results import model_names

    return config.model_id or model_names([config.model])[0][0]


def check_servable(config: ServeConfig) -> str:
    """Fail before any replica starts when the checkpoint or its preset is unusable; returns the data set."""
    from lsr.ases.student import as_es_student

    student = as_es_student(config.model)
    for path in student.paths if student else [config.model]:
        check_checkpoint(path)
    return resolve_dataset(config, training_metadata(config.model))


class ServedModel:
    """A loaded checkpoint and the server's generation defaults; thread-compatible for one generate at a time."""

    def __init__(self, config: ServeConfig, device: str = "cpu"):
        import torch

        from lsr.ases.student import as_es_student
        from lsr.core.config import preset

        self.config = config
        self.device = device
        self.training = training_metadata(config.model)
        self.dataset = resolve_dataset(config, self.training)
        self.model_id = model_id(config)
        self.student = as_es_student(config.model)
        self.model, self.tokenizer = load_summarizer(self.student.es_model if self.student else config.model, device)
        self.as_model = (
            load_summarizer(self.student.as_model, device) if self.student and self.student.as_model else None
        )
        generation = preset(self.dataset).generation
        self.base_generation = {**generation.as_generate_kwargs(), **config.generation.as_kwargs()}
        positions = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        wanted = config.source_max_tokens or preset(self.dataset).model.source_max_tokens
        self.source_max_tokens = min(wanted, positions) if positions else wanted
        gate_values = getattr(self.model, "gate_values", None)
        self.gates: dict[str, list[float]] = gate_values() if callable(gate_values) else {}
        self.threads = torch.get_num_threads()

    @property
    def explains(self) -> str | None:
        """What ``explain: true`` answers: ``"rationale"`` (AS-ES), ``"gates"`` (MWF views), or None."""
        if self.student is not None:
            return "rationale"
        return "gates" if self.gates else None

    # ---- per request --------------------------------------------------------------------------------------

    def generation_for(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The preset's settings with the server's and the request's overrides; refuses min > max."""
        return self.card().generation_for(overrides)

    def check_explain(self) -> None:
        """Refuse ``explain: true`` (422) for a model that has neither gates nor a rationale to show."""
        self.card().check_explain()

    def card(self) -> ModelCard:
        """What a request is validated against, without the model (the ingress holds a copy)."""
        return ModelCard(
            model_id=self.model_id,
            base_generation=dict(self.base_generation),
            student=self.student is not None,
            explains=self.explains,
            source_max_tokens=self.source_max_tokens,
            gates=self.gates,
        )

    def token_counts(self, documents: Sequence[str]) -> list[int]:
        """Tokens per document before truncation (the answer says which ones were cut).

        Called from the batch thread only: a fast tokenizer used from two threads at once fails ("Already
        borrowed") because ``generate`` sets its truncation and padding state.
        """
        encoded = self.tokenizer(list(documents), truncation=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]

    # ---- per batch ----------------------------------------------------------------------------------------

    def summarize(self, documents: Sequence[Document]) -> list[Generated]:
        """Summaries of a batch, in order: one ``generate`` per distinct generation setting in the batch."""
        started = time.perf_counter()
        groups: dict[tuple[tuple[str, Any], ...], list[int]] = {}
        for i, doc in enumerate(documents):
            groups.setdefault(doc.generation, []).append(i)
        results: list[Generated | None] = [None] * len(documents)
        for settings, indices in groups.items():
            texts = [documents[i].text for i in indices]
            counts = self.token_counts(texts)
            t0 = time.perf_counter()
            if self.student is None:
                summaries = generate(
                    self.model,
                    self.tokenizer,
                    texts,
                    source_max_tokens=self.source_max_tokens,
                    generation_kwargs=dict(settings),
                    device=self.device,
                )
                chains: list[Any] = [None] * len(texts)
            else:
                chains = self.chains(texts, dict(settings))
                summaries = [c.summary for c in chains]
            generate_ms = 1000 * (time.perf_counter() - t0)
            for i, summary, count, chain in zip(indices, summaries, counts, chains, strict=True):
                queue_ms = 1000 * (started - documents[i].enqueued_at)
                results[i] = Generated(summary, count, len(indices), queue_ms, generate_ms, chain)
        return [r for r in results if r is not None]

    def chains(self, texts: Sequence[str], settings: dict[str, Any]) -> list[Any]:
        """An AS-ES student's chains for ``texts``: each turn decoded with ``settings``, as ``lsr evaluate`` does."""
        from lsr.ases.generate import generate_chains, model_step

        main = (self.model, self.tokenizer)
        models = {"ES": main, "AS": self.as_model or main}
        step = model_step(models, source_max_tokens=self.source_max_tokens, generation_kwargs=settings,
                          device=self.device)
        return generate_chains(texts, step, unified=self.as_model is None)

    def explanation(self, generated: Generated, document: str) -> dict[str, Any] | None:
        """``explain: true`` for one document: an AS-ES student's rationale located in ``document``, else None
        (an MWF student explains itself by its gates, answered once per request)."""
        from lsr.ases.explain import explain

        return explain(generated.chain, document) if generated.chain is not None else None

    # ---- GET /model ---------------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Config, views, gates and training metadata, as ``GET /model`` answers them (``parameters`` counted as
        ``lsr evaluate``'s Params column counts them)."""
        config = self.model.config
        return {
            "id": self.model_id,
            "model_type": config.model_type,
            "dataset": self.dataset,
            "views": list(getattr(config, "mwf_views", None) or []),
            "ases": self.student.variant if self.student else None,
            "explains": self.explains,
            "gates": self.gates,
            "family": "seq2seq" if config.is_encoder_decoder else "causal",
            "decoder_layers": getattr(config, "decoder_layers", None) or config.num_hidden_layers,
            "parameters": parameter_count(self.model),
            "device": str(self.device),
            "torch_threads": self.threads,
            "source_max_tokens": self.source_max_tokens,
            "generation": self.base_generation,
            "limits": self.config.limits.model_dump(),
            "batching": self.config.batching.model_dump(),
            "config": config.to_diff_dict(),
            "training": self.training,
        }


def process_memory_mb() -> dict[str, float | None]:
    """This process's resident memory now (Linux /proc; ``None`` elsewhere) and its peak, in MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    rss = None
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return {"rss_mb": rss, "peak_rss_mb": peak}


def generation_key(settings: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A hashable form of generation settings: documents with equal keys share one ``generate`` call."""
    return tuple(sorted(settings.items()))
