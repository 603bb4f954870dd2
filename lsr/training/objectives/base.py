"""Training objectives: one loop, pluggable losses (the TRL pattern, STYLE.md).

An objective turns ``(model, batch)`` into ``(total_loss, parts)``; the loop backpropagates the total and logs
every part under its name. Later methods (logit KD, AS-ES) add an objective here, not a new loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch
import torch.nn.functional as F

from lsr.train.data import LABEL_PAD

LossParts = dict[str, torch.Tensor]


class Objective(Protocol):
    """``objective(model, batch) -> (total_loss, parts)``; ``parts`` maps a loss's name to its (detached-ok) value."""

    name: str

    def __call__(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, LossParts]:
        ...


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over real target tokens (label padding, -100, is ignored)."""
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=LABEL_PAD)


class MWFObjective:
    """Eq. 11: the model's own ``gamma_ce * CE + gamma_align * sum(L_view)``, with its parts."""

    name = "mwf"

    def __call__(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, LossParts]:
        output = model(**batch)
        parts = dict(getattr(output, "loss_parts", None) or {"ce": output.loss})
        return output.loss, parts


class FineTuneObjective:
    """Plain fine-tuning (the baseline): cross-entropy on the summary only; rationale inputs are ignored.

    The loss is computed here from the logits, not taken from the model, so it is plain CE whatever the
    model's gamma weights say: a like-for-like baseline for any student class.
    """

    name = "finetune"

    def __call__(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, LossParts]:
        from transformers.models.bart.modeling_bart import shift_tokens_right

        config = _unwrap(model).config
        labels = batch["labels"]
        decoder_input_ids = shift_tokens_right(labels, config.pad_token_id, config.decoder_start_token_id)
        output = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_input_ids=decoder_input_ids
        )
        loss = token_cross_entropy(output.logits, labels)
        return loss, {"ce": loss}


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP (or similar) wrapper."""
    return getattr(model, "module", model)


OBJECTIVES: dict[str, type] = {MWFObjective.name: MWFObjective, FineTuneObjective.name: FineTuneObjective}


def make_objective(name: str) -> Objective:
    """The objective called ``name`` (``mwf`` or ``finetune``)."""
    try:
        return OBJECTIVES[name]()
    except KeyError:
        raise ValueError(f"unknown objective {name!r}: choose one of {', '.join(OBJECTIVES)}") from None
