"""Cost of a model: its parameter count and the median seconds it takes per summary at batch 1 and batch 16.

Latency is timed apart from the scored generation (whose batch size and actor count are chosen for
throughput): one model on one device (a GPU when ``--gpu``), the same beam-search preset, after one untimed
warm-up call at each batch size. A batch's seconds per summary is its wall time divided by its documents; the
reported figure is the median (p50) over the timed batches. Documents are taken from the evaluation set in
order, cycling when it holds fewer than a batch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from itertools import cycle, islice
from typing import Any

#: Batch sizes timed, and the ModelResult field each fills.
LATENCY_BATCHES = {1: "latency_b1_p50", 16: "latency_b16_p50"}


def parameter_count(model: Any) -> int:
    """Every parameter of the model, trainable or not (shared embeddings counted once, as PyTorch does)."""
    return sum(p.numel() for p in model.parameters())


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


def profile_model(path: str, documents: Sequence[str], *, source_max_tokens: int, generation_kwargs: dict[str, Any],
                  batches: int) -> dict[str, Any]:
    """``parameters``, ``latency_b1_p50``, ``latency_b16_p50`` and the device, for one checkpoint."""
    import torch

    from lsr.evaluation.generation import generate_batch, load_summarizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_summarizer(path, device)

    def summarise(chunk: list[str]) -> list[str]:
        out = generate_batch(model, tokenizer, chunk, source_max_tokens=source_max_tokens,
                             generation_kwargs=generation_kwargs, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    figures: dict[str, Any] = {"parameters": parameter_count(model), "device": device}
    for batch_size, key in LATENCY_BATCHES.items():
        figures[key] = median(seconds_per_summary(summarise, documents, batch_size=batch_size, batches=batches))
    return figures


def profile_on_ray(path: str, documents: Sequence[str], *, source_max_tokens: int,
                   generation_kwargs: dict[str, Any], batches: int, num_gpus: float) -> dict[str, Any]:
    """:func:`profile_model` in one Ray task, on a GPU when ``num_gpus`` asks for one."""
    import ray

    task = ray.remote(num_cpus=1, num_gpus=num_gpus)(profile_model)
    return ray.get(task.remote(path, list(documents), source_max_tokens=source_max_tokens,
                               generation_kwargs=generation_kwargs, batches=batches))
