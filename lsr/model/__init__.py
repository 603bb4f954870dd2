"""The MWF student model (paper Step 3).

The names below load on first use (PEP 562), so that importing a light submodule (``lsr.model.views``, which every
command's config needs) does not import torch and transformers: ``lsr --help`` and ``lsr mine`` started 3.5 s later
before. Importing :mod:`lsr.model.gated_bart` (any model class below) registers ``gated_bart`` with the Auto classes.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "GatedBartConfig": "config",
    "mwf_fields": "config",
    "GatedBartDecoderLayer": "gated_bart",
    "GatedBartForConditionalGeneration": "gated_bart",
    "GatedBartOutput": "gated_bart",
    "MwfBartEncoder": "gated_bart",
    "MwfEncoderOutput": "gated_bart",
    "RationaleModules": "modules",
    "alignment_loss": "modules",
    "masked_mean": "modules",
    "VIEW_REGISTRY": "views",
    "VIEWS": "views",
    "View": "views",
    "canonical_views": "views",
    "parse_views": "views",
    "rationale_text": "views",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'lsr.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lsr.model.{_WHERE[name]}"), name)
