"""The MWF student's configuration: a ``BartConfig`` plus the paper's Step-3 fields.

Subclassing ``BartConfig`` (rather than nesting one) keeps the checkpoint a plain Hugging Face model:
``config.json`` holds every BART field and the ``mwf_*`` fields side by side, and ``AutoConfig`` finds the
class through ``model_type = "gated_bart"`` once :mod:`lsr.model` is imported.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import BartConfig

from lsr.core.config import preset
from lsr.core.errors import InputError
from lsr.model.views import VIEWS, canonical_views

#: Keys that a checkpoint written by an earlier version of lsr may hold in config.json and that are not model
#: settings: Eq. 11's weights are the MWF objective's parameters (:mod:`lsr.training.objectives.mwf`), set per run,
#: so they never travel with a model. Loading such a checkpoint ignores them.
RETIRED_KEYS = ("mwf_gamma_ce", "mwf_gamma_align")

@strict
class GatedBartConfig(BartConfig):
    r"""BART with MWF rationale modules and weak gates (docs/paper.md#mwf).

    mwf_views: which rationale modules exist, a subset of ``["ea", "as", "ter"]`` kept in that order;
        ``None`` means all three, ``[]`` means plain BART (no modules, no gates).
    mwf_gate_init: every gate's starting value (paper: 0.02 CNN/DM, 0.01 XSum).
    mwf_gates_trainable: ``False`` freezes the gates at ``mwf_gate_init`` (the paper's fixed-gate row, Table 4).
    mwf_hierarchical: EA attends to the encoder output, AS to EA's output, TER to AS's output (the authors'
        code); ``False`` lets each module attend to the encoder output.
    mwf_freeze_encoder: the authors' code freezes the BART encoder; here it is an option, off by default.
    """

    model_type = "gated_bart"

    mwf_views: list[str] | None = None
    mwf_gate_init: float = 0.02
    mwf_gates_trainable: bool = True
    mwf_hierarchical: bool = True
    mwf_freeze_encoder: bool = False

    def __post_init__(self, **kwargs):
        for key in RETIRED_KEYS:
            kwargs.pop(key, None)
        self.mwf_views = list(VIEWS) if self.mwf_views is None else canonical_views(self.mwf_views)
        if not 0.0 <= float(self.mwf_gate_init) <= 1.0:
            raise InputError(f"mwf_gate_init must lie in [0, 1], got {self.mwf_gate_init}")
        super().__post_init__(**kwargs)


def mwf_fields(dataset: str, **overrides: Any) -> dict[str, Any]:
    """The ``mwf_*`` config fields of a data set's preset (the gate init), with ``overrides`` applied.

    Keeps the paper's numbers in :mod:`lsr.core.config` only; ``GatedBartForConditionalGeneration.from_bart(path,
    **mwf_fields("cnndm"))`` builds the CNN/DM student.
    """
    model = preset(dataset).model
    fields: dict[str, Any] = {"mwf_gate_init": model.gate_init}
    for key, value in overrides.items():
        name = key if key.startswith("mwf_") else f"mwf_{key}"
        if name not in GatedBartConfig.__dataclass_fields__:
            raise InputError(f"unknown MWF setting {key!r}")
        fields[name] = value
    return fields
