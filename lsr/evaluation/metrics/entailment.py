"""Entailment probability (the logit-KD paper's MNLI measure), per example; only when ``--nli-model`` is given.

The probability an NLI sequence classifier, given by path, puts on its ``entailment`` label with the reference as
premise and the generated summary as hypothesis: how much of the summary the reference supports. Optional, since
no NLI model ships with the project. torch is imported when scoring, not with the registry that ``lsr evaluate``
and ``lsr report`` load at start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsr.core.errors import InputError
from lsr.evaluation.metrics.base import Column, Metric, fixed, short_path
from lsr.evaluation.metrics.encoders import device_or_default, load_encoder
from lsr.model.checkpoint_checks import local_model_config

if TYPE_CHECKING:
    from lsr.evaluation.config import EvaluateConfig


@dataclass(frozen=True)
class NliModel:
    """An NLI classifier's folder and the index of its entailment label."""

    path: str
    entailment_index: int


def resolve_nli_model(path: str) -> NliModel:
    """Check an NLI model folder before any generation: a sequence classifier with an ``entailment`` label."""
    config = local_model_config(path, "--nli-model", "a sequence-classification model folder", "a model folder")
    labels = {int(i): str(name) for i, name in (config.id2label or {}).items()}
    found = [i for i, name in labels.items() if name.lower().startswith("entail")]
    if len(found) != 1:
        raise InputError(f"--nli-model {path}: needs exactly one 'entailment' label (has {sorted(labels.values())})")
    return NliModel(path, found[0])


def entailment(predictions: Sequence[str], references: Sequence[str], model: NliModel, *, batch_size: int = 16,
               device: str | None = None, max_length: int = 512) -> list[float]:
    """Per example probability that the reference (premise) entails the prediction (hypothesis)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return []
    import torch

    device = device_or_default(device)
    classifier, tokenizer = load_encoder(model.path, device, classifier=True)
    scores: list[float] = []
    for start in range(0, len(predictions), batch_size):
        encoded = tokenizer(list(references[start:start + batch_size]), list(predictions[start:start + batch_size]),
                            padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
        with torch.inference_mode():
            logits = classifier(**encoded).logits
        scores += [float(p) for p in logits.softmax(dim=-1)[:, model.entailment_index].cpu()]
    return scores


def resolve(config: EvaluateConfig) -> NliModel | None:
    return resolve_nli_model(config.nli_model) if config.nli_model else None


def record(model: NliModel | None) -> dict[str, Any]:
    return {"nli_model": model.path if model else None}


def score(predictions: Sequence[str], references: Sequence[str], model: NliModel) -> dict[str, list[float]]:
    return {"entailment": entailment(predictions, references, model)}


def describe(meta: Mapping[str, Any]) -> str:
    model = short_path(meta.get("nli_model"))
    if not model:
        return "NLI: not measured."
    return f"NLI: probability that the reference entails the summary ({model})."


ENTAILMENT = Metric(
    name="entailment",
    per="example",
    columns=(Column("entailment", "NLI", fixed(4)),),
    describe=describe,
    resolve=resolve,
    record=record,
    score=score,
)
