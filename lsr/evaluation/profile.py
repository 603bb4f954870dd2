"""The per-model metrics of a checkpoint (its parameter count and latency, :mod:`lsr.evaluation.metrics`), measured
in one Ray task that loads the model once on one device (a GPU when ``--gpu``).

The task reads the metric registry as the code declares it and measures every per-model metric that has a
``measure``, given what that metric resolved before Ray started. An AS-ES student's figures are the sum over its
checkpoints (its cost is that of all of them), measured without documents: its latency is not timed, since a
chain is several ``generate`` calls, not comparable with one summary's.

torch and ray are imported inside the functions: the module is imported when ``lsr evaluate`` starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lsr.evaluation.metrics.base import Profiled
from lsr.evaluation.metrics.registry import metrics
from lsr.model.generate import generate, load_summarizer


def profile_model(path: str, documents: Sequence[str], *, source_max_tokens: int, generation_kwargs: dict[str, Any],
                  resolved: Mapping[str, Any]) -> dict[str, Any]:
    """Every per-model metric's columns for one checkpoint, and the ``device`` they were measured on."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = load_summarizer(path, device)

    def summarise(chunk: list[str]) -> list[str]:
        out = generate(model, tokenizer, chunk, source_max_tokens=source_max_tokens,
                       generation_kwargs=generation_kwargs, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    profiled = Profiled(model, summarise, documents)
    figures: dict[str, Any] = {"device": device}
    for metric in metrics("model"):
        if metric.measure is not None and resolved.get(metric.name) is not None:
            figures.update(metric.measure(profiled, resolved[metric.name]))
    return figures


def profile_on_ray(path: str, documents: Sequence[str], *, source_max_tokens: int,
                   generation_kwargs: dict[str, Any], resolved: Mapping[str, Any], num_gpus: float) -> dict[str, Any]:
    """:func:`profile_model` in one Ray task, on a GPU when ``num_gpus`` asks for one."""
    import ray

    task = ray.remote(num_cpus=1, num_gpus=num_gpus)(profile_model)
    settings = {metric.name: resolved.get(metric.name) for metric in metrics("model")}  # all the task needs
    return ray.get(task.remote(path, list(documents), source_max_tokens=source_max_tokens,
                               generation_kwargs=generation_kwargs, resolved=settings))


def profile_checkpoints_on_ray(paths: Sequence[str], *, resolved: Mapping[str, Any],
                               num_gpus: float) -> dict[str, Any]:
    """An AS-ES student's figures: each column summed over its checkpoints, ``None`` where one lacks it."""
    figures = [profile_on_ray(path, [], source_max_tokens=1, generation_kwargs={}, resolved=resolved,
                              num_gpus=num_gpus) for path in paths]
    keys = [key for metric in metrics("model") for key in metric.keys]
    summed = {key: _sum([f.get(key) for f in figures]) for key in keys if any(key in f for f in figures)}
    return {**summed, "device": figures[0]["device"]}


def _sum(values: Sequence[Any]) -> Any:
    if any(v is None or isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        return None
    return sum(values)
