"""Every column of the results table, in its order: a metric's line here is all that wires it in.

The job scores and measures what is listed here, ``results.md``, ``results.json`` and report.html show it, and
the note under the table is each metric's own description. Readers call :func:`metrics` (not the list itself) at
the moment they need it, so a metric registered later (a test's) is seen by all of them alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lsr.evaluation.metrics.base import Column, Metric
from lsr.evaluation.metrics.bertscore import BERTSCORE
from lsr.evaluation.metrics.entailment import ENTAILMENT
from lsr.evaluation.metrics.examples import EXAMPLES
from lsr.evaluation.metrics.latency import LATENCY
from lsr.evaluation.metrics.parameters import PARAMETERS
from lsr.evaluation.metrics.rouge import ROUGE
from lsr.evaluation.metrics.similarity import SIMILARITY

if TYPE_CHECKING:
    from lsr.evaluation.config import EvaluateConfig

#: Table 2's columns first and in its order (R-1, R-2, R-L, BS, n), then the measures of the logit-KD paper.
METRICS: list[Metric] = [
    ROUGE,
    BERTSCORE,
    EXAMPLES,
    SIMILARITY,
    ENTAILMENT,
    PARAMETERS,
    LATENCY,
]


def metrics(per: str | None = None) -> list[Metric]:
    """The registered metrics in table order; only the per-example or per-model ones when ``per`` says which."""
    return [metric for metric in METRICS if per is None or metric.per == per]


def columns() -> list[Column]:
    """The results table's columns after the model's name, in order."""
    return [column for metric in metrics() for column in metric.columns]


def resolve_all(config: EvaluateConfig) -> dict[str, Any]:
    """What every metric needs for this run, by name (``None``: not measured); runs before Ray starts."""
    return {metric.name: metric.resolve(config) for metric in metrics()}


def records(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """What ``results.json`` keeps about the scoring models and settings ``resolved`` holds."""
    out: dict[str, Any] = {}
    for metric in metrics():
        out.update(metric.record(resolved.get(metric.name)))
    return out


def notes(meta: Mapping[str, Any]) -> str:
    """Every metric's note on what its columns measure, read from ``results.json``'s top-level keys."""
    return " ".join(note for note in (metric.describe(meta) for metric in metrics()) if note)
