"""Plain fine-tuning, the baseline: cross-entropy on the summary only; rationale inputs are ignored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch

from lsr.training.objectives.base import LossParts, Objective, token_cross_entropy, unwrap


class FinetuneObjective(Objective):
    """CE computed here from the logits (not taken from the model), so it is a like-for-like baseline for any
    student class; the modules are not run on the rationale side and no alignment term exists."""

    kind: Literal["finetune"] = "finetune"

    def __call__(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, LossParts]:
        from transformers.models.bart.modeling_bart import shift_tokens_right

        config = unwrap(model).config
        labels = batch["labels"]
        decoder_input_ids = shift_tokens_right(labels, config.pad_token_id, config.decoder_start_token_id)
        output = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_input_ids=decoder_input_ids
        )
        loss = token_cross_entropy(output.logits, labels)
        return loss, {"ce": loss}
