"""The median seconds a model takes per summary at batch 1 and at batch 16.

Latency is timed apart from the scored generation (whose batch size and actor count are chosen for
throughput): one model on one device (a GPU when ``--gpu``), the same beam-search preset, after one untimed
warm-up call at each batch size. A batch's seconds per summary is its wall time divided by its documents; the
reported figure is the median (p50) over the timed batches. Documents are taken from the evaluation set in
order, cycling when it holds fewer than a batch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import cycle, islice
from typing import TYPE_CHECKING, Any

from lsr.evaluation.metrics.base import Column, Metric, Profiled, fixed

if TYPE_CHECKING:
    from lsr.evaluation.config import EvaluateConfig

#: Batch sizes timed, and the column each fills.
LATENCY_BATCHES = {1: "latency_b1_p50", 16: "latency_b16_p50"}


def seconds_per_summary(summarise: Callable[[list[str]], list[str]], documents: Sequence[str], *, batch_size: int,
                        batches: int, clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Wall seconds per summary of ``batches`` calls of ``summarise`` on ``batch_size`` documents each."""
    if batches <= 0 or not documents:
        return []
    stream = cycle(documents)
    summarise(list(islice(stream, batch_size)))  # warm-up: kernels, caches, allocator
    timings = []
    for _ in range(batches):
        chunk = list(islice(stream, batch_size))
        start = clock()
        summarise(chunk)
        timings.append((clock() - start) / len(chunk))
    return timings


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def resolve(config: EvaluateConfig) -> int:
    """The number of batches timed at each size (0: none)."""
    return config.latency_batches


def record(batches: int) -> dict[str, Any]:
    return {"latency_batches": batches}


def measure(profiled: Profiled, batches: int) -> dict[str, Any]:
    return {
        key: median(seconds_per_summary(profiled.summarise, profiled.documents, batch_size=size, batches=batches))
        for size, key in LATENCY_BATCHES.items()
    }


def describe(meta: Mapping[str, Any]) -> str:
    if not meta.get("latency_batches"):
        return "s/summary: not measured."
    return (f"s/summary: median seconds per summary over {meta['latency_batches']} timed batches of 1 and of 16 "
            f"documents ({meta.get('latency_device')}).")


LATENCY = Metric(
    name="latency",
    per="model",
    columns=tuple(Column(key, f"s/summary b{size}", fixed(3)) for size, key in LATENCY_BATCHES.items()),
    describe=describe,
    resolve=resolve,
    record=record,
    measure=measure,
)
