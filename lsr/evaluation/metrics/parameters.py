"""A model's parameter count, the logit-KD paper's size column (shown as 139.4M, or 12.3k for the tiny models)."""

from __future__ import annotations

from typing import Any

from lsr.evaluation.metrics.base import Column, Metric, Profiled


def parameter_count(model: Any) -> int:
    """Every parameter of the model, trainable or not (shared embeddings counted once, as PyTorch does)."""
    return sum(p.numel() for p in model.parameters())


def millions_or_thousands(count: float) -> str:
    return f"{count / 1e6:.1f}M" if count >= 1e5 else f"{count / 1e3:.1f}k"


def measure(profiled: Profiled, resolved: Any) -> dict[str, Any]:
    return {"parameters": parameter_count(profiled.model)}


PARAMETERS = Metric(
    name="parameters",
    per="model",
    columns=(Column("parameters", "Params", millions_or_thousands),),
    measure=measure,
)
