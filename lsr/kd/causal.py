"""Decoder-only (causal LM) students and teachers under KD: teacher-forced logits aligned with their labels.

The prompt layout a causal example follows (instruction, document, cue, summary; labels ``-100`` on the prompt) is
:mod:`lsr.model.causal_prompt`; generation is :func:`lsr.model.generate.generate_causal`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def causal_logits(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, labels)`` aligned so that ``logits[:, t]`` predicts ``labels[:, t]`` (the usual one-token shift)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return logits[:, :-1], batch["labels"][:, 1:]
