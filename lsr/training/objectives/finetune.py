"""Plain fine-tuning, the baseline: cross-entropy on the summary only; rationale inputs are ignored.

A seq2seq student is teacher-forced on the summary; a causal student reads ``prompt + summary`` and its prompt's
labels are -100, so the CE covers the summary tokens only in both families (:func:`lsr.kd.teacher.teacher_forced`).

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch

from lsr.training.objectives.base import LossParts, Objective, token_cross_entropy


class FinetuneObjective(Objective):
    """CE computed here from the logits (not taken from the model), so it is a like-for-like baseline for any
    student class; the modules are not run on the rationale side and no alignment term exists."""

    kind: Literal["finetune"] = "finetune"

    def __call__(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, LossParts]:
        from lsr.kd.teacher import teacher_forced

        logits, labels = teacher_forced(model, batch)  # seq2seq or causal; a causal prompt's labels are -100
        loss = token_cross_entropy(logits, labels)
        return loss, {"ce": loss}
