"""The MWF student's configuration: a ``BartConfig`` plus the paper's Step-3 fields.

Subclassing ``BartConfig`` (rather than nesting one) keeps the checkpoint a plain Hugging Face model:
``config.json`` holds every BART field and the ``mwf_*`` fields side by side, and ``AutoConfig`` finds the
class through ``model_type = "gated_bart"`` once :mod:`lsr.model` is imported.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import BartConfig

from lsr.config import preset
from lsr.errors import InputError

# The rationale views in the order the hierarchy chains them: Element-Aspect, Associated Sentence, Triples.
VIEWS: tuple[str, ...] = ("ea", "as", "ter")


def canonical_views(views: Any) -> list[str]:
    """``views`` validated and put in hierarchy order; a clear error names the unknown or repeated view."""
    if isinstance(views, str):
        views = [v for v in views.replace(",", " ").split() if v]
    views = [str(v).lower() for v in views]
    unknown = sorted(set(views) - set(VIEWS))
    if unknown:
        names = ", ".join(unknown)
        raise InputError(f"unknown MWF view(s) {names} (each unknown view must be one of {', '.join(VIEWS)})")
    if len(set(views)) != len(views):
        raise InputError(f"MWF views repeat a view: {views}")
    return [v for v in VIEWS if v in views]


@strict
class GatedBartConfig(BartConfig):
    r"""BART with MWF rationale modules and weak gates (DESIGN.md §3, Step 3).

    mwf_views: which rationale modules exist, a subset of ``["ea", "as", "ter"]`` kept in that order;
        ``None`` means all three, ``[]`` means plain BART (no modules, no gates).
    mwf_gate_init: every gate's starting value (paper: 0.02 CNN/DM, 0.01 XSum).
    mwf_gates_trainable: ``False`` freezes the gates at ``mwf_gate_init`` (the paper's fixed-gate row, Table 4).
    mwf_hierarchical: EA attends to the encoder output, AS to EA's output, TER to AS's output (the authors'
        code); ``False`` lets each module attend to the encoder output.
    mwf_gamma_ce, mwf_gamma_align: Eq. 11's weights of cross-entropy and of the summed alignment losses.
    mwf_freeze_encoder: the authors' code freezes the BART encoder; here it is an option, off by default.
    """

    model_type = "gated_bart"

    mwf_views: list[str] | None = None
    mwf_gate_init: float = 0.02
    mwf_gates_trainable: bool = True
    mwf_hierarchical: bool = True
    mwf_gamma_ce: float = 0.6
    mwf_gamma_align: float = 0.4
    mwf_freeze_encoder: bool = False

    def __post_init__(self, **kwargs):
        self.mwf_views = list(VIEWS) if self.mwf_views is None else canonical_views(self.mwf_views)
        if not 0.0 <= float(self.mwf_gate_init) <= 1.0:
            raise InputError(f"mwf_gate_init must lie in [0, 1], got {self.mwf_gate_init}")
        super().__post_init__(**kwargs)


def mwf_fields(dataset: str, **overrides: Any) -> dict[str, Any]:
    """The ``mwf_*`` config fields of a data set's preset (gate init, gammas), with ``overrides`` applied.

    Keeps the paper's numbers in :mod:`lsr.config` only; ``GatedBartForConditionalGeneration.from_bart(path,
    **mwf_fields("cnndm"))`` builds the CNN/DM student.
    """
    model = preset(dataset).model
    fields: dict[str, Any] = {
        "mwf_gate_init": model.gate_init,
        "mwf_gamma_ce": model.gamma_ce,
        "mwf_gamma_align": model.gamma_align,
    }
    for key, value in overrides.items():
        name = key if key.startswith("mwf_") else f"mwf_{key}"
        if name not in GatedBartConfig.__dataclass_fields__:
            raise InputError(f"unknown MWF setting {key!r}")
        fields[name] = value
    return fields
