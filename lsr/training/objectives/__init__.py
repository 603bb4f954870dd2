"""The objectives registry: ``--objective KIND`` picks one of :data:`OBJECTIVES` (see :mod:`.base` for the seam)."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from lsr.core.config import validate
from lsr.training.objectives.as_es import AsEsObjective
from lsr.training.objectives.base import LossParts, Objective, token_cross_entropy
from lsr.training.objectives.finetune import FinetuneObjective
from lsr.training.objectives.logit_kd import LogitKdObjective
from lsr.training.objectives.mwf import MwfObjective

#: Every objective a run may choose; adding one is a file here and a line in this tuple.
OBJECTIVES: tuple[type[Objective], ...] = (MwfObjective, FinetuneObjective, AsEsObjective, LogitKdObjective)

#: The config type of a run's objective: one of :data:`OBJECTIVES`, chosen by its ``kind``.
ObjectiveConfig = Annotated[Union[OBJECTIVES], Field(discriminator="kind")]  # noqa: UP007 (a runtime tuple)

_BY_KIND: dict[str, type[Objective]] = {cls.model_fields["kind"].default: cls for cls in OBJECTIVES}


def objective_class(kind: str) -> type[Objective] | None:
    """The registered objective called ``kind``, or ``None``."""
    return _BY_KIND.get(kind)


def make_objective(kind: str, **params: Any) -> Objective:
    """The objective ``kind`` with ``params``, validated like a config (one clear error for a bad parameter)."""
    cls = objective_class(kind)
    if cls is None:
        raise ValueError(f"unknown objective {kind!r}: choose one of {', '.join(_BY_KIND)}")
    return validate(cls, {"kind": kind, **params}, where=f"objective {kind}")


__all__ = [
    "OBJECTIVES",
    "AsEsObjective",
    "FinetuneObjective",
    "LogitKdObjective",
    "LossParts",
    "MwfObjective",
    "Objective",
    "ObjectiveConfig",
    "make_objective",
    "objective_class",
    "token_cross_entropy",
]
