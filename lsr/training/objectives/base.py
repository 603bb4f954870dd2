"""What every training objective is: a typed config that turns the model's outputs and a batch into a loss.

The pattern of TRL's trainers: one loop, pluggable losses (docs/architecture.md#seams). An objective is a strict
pydantic model (its parameters, validated with the rest of the run's config before Ray starts, and pickled to the
Ray Train workers), with

- ``setup(model, device)``: called once on each worker before the first step, for resources that live beside the
  student (a logit-KD teacher loads there);
- ``__call__(model, batch) -> (total_loss, parts)``: the loop backpropagates the total and logs every part under
  its name (``loss/<name>`` in the history);
- ``check_views(views)``: refuses a run whose views the objective cannot train (MWF needs at least one);
- ``input_columns`` and ``training_rows(ds)``: an objective that trains on rows derived from the input (AS-ES
  turns chains into "chain so far -> next segment" rows) names the extra columns it reads and maps the rows;
- ``student_families`` and ``check_student(family)``: which students it trains, ``seq2seq`` (BART, MWF) and / or
  ``causal`` (decoder-only LMs, :mod:`lsr.model.causal_prompt`), checked before Ray starts.

Adding an objective is one file in this package and one line in :data:`lsr.training.objectives.OBJECTIVES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from lsr.core.config import StrictModel
from lsr.model.batching import LABEL_PAD

if TYPE_CHECKING:
    import ray.data

LossParts = dict[str, torch.Tensor]


class Objective(StrictModel):
    """The base of every objective; a subclass adds ``kind: Literal["<name>"]``, its parameters and ``__call__``."""

    kind: str

    #: Whether the training step needs the stored alignment targets (the target pass runs before training then).
    needs_targets: ClassVar[bool] = False
    #: The ``mwf_*`` model settings whose values this objective reads from the data set's ``model`` section when
    #: the run does not set them (see :meth:`defaults_from_model_section`).
    model_section_defaults: ClassVar[dict[str, str]] = {}

    @classmethod
    def defaults_from_model_section(cls, model_section: Mapping[str, Any]) -> dict[str, Any]:
        """This objective's parameters that default to the data set's ``model`` section (paper values, YAML)."""
        return {field: model_section[key] for field, key in cls.model_section_defaults.items() if key in model_section}

    #: The student families this objective can train (see :mod:`lsr.model.loading`).
    student_families: ClassVar[tuple[str, ...]] = ("seq2seq", "causal")

    def check_views(self, views: Sequence[str]) -> None:
        """Raise ``ValueError`` when this objective cannot train a student with ``views``."""

    def check_student(self, family: str) -> None:
        """Raise ``InputError`` before Ray starts when a student of ``family`` does not suit (the family itself is
        checked against :attr:`student_families` by the run; nothing more by default)."""

    #: Input columns read besides ``id, document, summary`` and the views' columns, for :meth:`training_rows`
    #: (which may consume them: AS-ES builds its rows from ``segments``).
    input_columns: ClassVar[tuple[str, ...]] = ()

    def training_rows(self, ds: ray.data.Dataset) -> ray.data.Dataset:
        """The rows to train on (``id, document, summary`` + views' columns) from the input rows (as they are)."""
        return ds

    def data_columns(self) -> tuple[str, ...]:
        """Columns of the training data carried into every batch as they are (a teacher's top-k; none by default)."""
        return ()

    def check_tokenizer(self, tokenizer: Any) -> None:
        """Raise ``InputError`` before Ray starts when the student's tokenizer does not suit (nothing by default)."""

    def setup(self, model: torch.nn.Module, device: torch.device) -> None:
        """Prepare worker-side resources (nothing by default)."""

    def __call__(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, LossParts]:
        raise NotImplementedError


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over real target tokens (label padding, -100, is ignored)."""
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=LABEL_PAD)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP (or similar) wrapper."""
    return getattr(model, "module", model)
