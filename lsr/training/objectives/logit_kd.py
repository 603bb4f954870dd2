"""Logit knowledge distillation (the KD paper; docs/paper.md#logit-kd): ``alpha * CE + (1 - alpha) * T^2 * KL``.

The KL (:mod:`lsr.kd.kd_loss`) is taken on the summary tokens only (the released code of the KD paper takes it
over the prompt), with padding masked, and averaged over summary tokens like the CE.

Two teacher modes:

- *online* (``--teacher PATH``): the teacher is loaded in :meth:`setup` on each worker's device, frozen, and run
  teacher-forced on every batch beside the student; for teachers that fit next to it.
- *offline* (no ``--teacher``): ``--data`` is the output of ``lsr teacher`` (:mod:`lsr.kd.teacher_pass`),
  whose rows carry the teacher's top-k ids and log-probs per summary token; for teachers too big to co-locate.

Students of both families: a seq2seq student (BART, MWF) is fed the document and teacher-forced on the summary; a
causal LM is fed ``prompt + summary`` with the prompt's labels at -100 (:mod:`lsr.model.causal_prompt`); the teacher
must be of the same family and share the tokenizer (both checked before Ray starts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from pydantic import Field, PrivateAttr, field_validator

from lsr.core.errors import InputError
from lsr.kd.kd_loss import kd_kl_full, kd_kl_topk, kd_loss
from lsr.kd.teacher import (
    check_same_tokenizer,
    check_teacher_path,
    load_teacher,
    teacher_family,
    teacher_forced,
)
from lsr.model.batching import LABEL_PAD
from lsr.model.topk_columns import TEACHER_COLUMNS, topk_from_batch
from lsr.training.objectives.base import LossParts, Objective, token_cross_entropy


class LogitKdObjective(Objective):
    """CE on the gold summary plus the tempered KL to a teacher's token distributions (online or offline)."""

    kind: Literal["logit-kd"] = "logit-kd"
    alpha: float = Field(
        default=0.5, ge=0.0, le=1.0, description="logit-kd: weight of the CE, 1 - alpha goes to the KL (default 0.5)"
    )
    temperature: float = Field(default=2.0, gt=0.0, description="logit-kd: softmax temperature T of the KL (default 2)")
    teacher: str | None = Field(
        default=None,
        description="logit-kd: teacher checkpoint folder run online on each worker; without it --data must be a "
        "teacher-pass output (offline top-k)",
    )

    _teacher_model: Any = PrivateAttr(default=None)

    @field_validator("teacher")
    @classmethod
    def _teacher_exists(cls, path: str | None) -> str | None:
        if path is not None:
            try:
                check_teacher_path(path)
            except InputError as err:
                raise ValueError(str(err)) from None
        return path

    @property
    def online(self) -> bool:
        return self.teacher is not None

    def data_columns(self) -> tuple[str, ...]:
        """Offline mode reads the teacher pass's columns from the training data."""
        return () if self.online else TEACHER_COLUMNS

    def check_tokenizer(self, tokenizer: Any) -> None:
        if self.online:
            check_same_tokenizer(self.teacher, tokenizer)

    def check_student(self, family: str) -> None:
        """An online teacher must be of the student's family: a causal teacher's logits follow ``prompt + summary``
        and a seq2seq teacher's the summary alone, so their positions would not line up."""
        if self.online:
            teacher = teacher_family(self.teacher)
            if teacher != family:
                raise InputError(f"teacher {self.teacher!r} is a {teacher} model and the student a {family} one; "
                                 "logit KD needs a teacher of the student's family (seq2seq or causal LM)")

    def setup(self, model: torch.nn.Module, device: torch.device) -> None:
        if self.online:
            self._teacher_model = load_teacher(self.teacher, device)
            if self._teacher_model.config.is_encoder_decoder != model.config.is_encoder_decoder:
                raise ValueError(f"teacher {self.teacher!r} and the student are not of the same family "
                                 "(seq2seq vs causal LM); their token positions would not line up")

    def __call__(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, LossParts]:
        logits, labels = teacher_forced(model, batch)  # seq2seq or causal student; prompt labels are -100
        mask = labels != LABEL_PAD
        ce = token_cross_entropy(logits, labels)
        if self.online:
            if self._teacher_model is None:
                raise RuntimeError("the logit-kd teacher is not loaded: setup() was not called on this worker")
            with torch.no_grad():
                teacher_logits, _ = teacher_forced(self._teacher_model, batch)
            # A checkpoint may pad its embedding matrix past the shared tokenizer; those ids are never targets.
            vocab = min(logits.size(-1), teacher_logits.size(-1))
            kl = kd_kl_full(logits[..., :vocab], teacher_logits[..., :vocab], mask, self.temperature)
        else:
            ids, logprobs = topk_from_batch(batch, mask)  # (summary tokens, k), in the order of logits[mask]
            kl = kd_kl_topk(logits[mask], ids, logprobs, torch.ones_like(ids[:, 0], dtype=torch.bool),
                            self.temperature)
        return kd_loss(ce, kl, alpha=self.alpha, temperature=self.temperature), {"ce": ce, "kd": kl}
