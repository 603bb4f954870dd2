"""AS-ES learning's objective (docs/paper.md#as-es): cross-entropy on "chain so far + document -> next turn" rows.

The method does not alter the model (a plain BART student, ``--views none``); what it changes is the data. The
run reads ``lsr segment``'s output and :meth:`AsEsObjective.training_rows` turns every segmented chain into the
rows of the chosen variant (:mod:`lsr.ases.dataset`): ``dual-es`` trains the ES model, ``dual-as`` the AS model
(two runs), ``unified`` one model whose input starts with the type to write. The loss is the fine-tuning CE.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import Field

from lsr.training.objectives.base import LossParts, Objective
from lsr.training.objectives.finetune import FinetuneObjective

if TYPE_CHECKING:
    import ray.data


class AsEsObjective(Objective):
    """CE on the AS-ES rows of one variant; the rows are built from the segmented data by :meth:`training_rows`."""

    kind: Literal["as-es"] = "as-es"
    ases_variant: Literal["dual-es", "dual-as", "unified"] = Field(
        default="unified", description="as-es: dual-es (ES model), dual-as (AS model) or unified (one model)"
    )

    input_columns: ClassVar[tuple[str, ...]] = ("segments", "total_summary")
    #: BART-family students only (chains and their serving are built for seq2seq models).
    student_families: ClassVar[tuple[str, ...]] = ("seq2seq",)

    def check_views(self, views: Sequence[str]) -> None:
        if views:
            raise ValueError("the as-es objective trains a plain BART student: pass --views none")

    def training_rows(self, ds: ray.data.Dataset) -> ray.data.Dataset:
        from lsr.ases.dataset import training_batch

        return ds.map_batches(training_batch, batch_format="pyarrow", fn_kwargs={"variant": self.ases_variant})

    def __call__(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, LossParts]:
        return FinetuneObjective.__call__(self, model, batch)
