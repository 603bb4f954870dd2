"""LSR-MWF's loss, Eq. 11: gamma_ce * CE + gamma_align * (L_EA + L_AS + L_TER).

The model returns the parts (``ce`` and one ``align_<view>`` per view present in the batch); the weights are this
objective's parameters, so they are set per run (paper: 0.6/0.4 CNN/DM, 0.7/0.3 XSum, from the data set's
``model`` section) and never travel inside a checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field

from lsr.core.cli_config import Flag
from lsr.training.objectives.base import LossParts, Objective


class MwfObjective(Objective):
    """Eq. 11 over the model's named loss parts."""

    kind: Literal["mwf"] = "mwf"
    # On the command line these are the model section's --gamma-ce / --gamma-align (the paper's values per data
    # set, overridable in YAML too), which fill them; one flag per value.
    gamma_ce: Annotated[float, Flag(cli=False)] = Field(ge=0.0, description="Eq. 11 weight of the cross-entropy")
    gamma_align: Annotated[float, Flag(cli=False)] = Field(
        ge=0.0, description="Eq. 11 weight of the summed alignment losses"
    )

    needs_targets: ClassVar[bool] = True
    #: BART-family students only (the MWF student is a BART with rationale modules).
    student_families: ClassVar[tuple[str, ...]] = ("seq2seq",)
    model_section_defaults: ClassVar[dict[str, str]] = {"gamma_ce": "gamma_ce", "gamma_align": "gamma_align"}

    def check_views(self, views: Sequence[str]) -> None:
        if not views:
            raise ValueError("the mwf objective needs at least one view; use --views none with --objective finetune")

    def combine(self, parts: LossParts) -> torch.Tensor:
        """Eq. 11 from the parts; a batch in which no row has a given view simply has no term for it."""
        align = [value for name, value in parts.items() if name.startswith("align_")]
        loss = self.gamma_ce * parts["ce"]
        if align:
            loss = loss + self.gamma_align * torch.stack(align).sum()
        return loss

    def __call__(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, LossParts]:
        output = model(**batch)
        parts = dict(getattr(output, "loss_parts", None) or {"ce": output.loss})
        return self.combine(parts), parts
