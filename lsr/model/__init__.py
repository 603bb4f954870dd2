"""The MWF student model (paper Step 3). Importing this package registers ``gated_bart`` with the Auto classes."""

from transformers import AutoConfig, AutoModelForSeq2SeqLM

from lsr.model.config import GatedBartConfig, mwf_fields
from lsr.model.gated_bart import (
    GatedBartDecoderLayer,
    GatedBartForConditionalGeneration,
    GatedBartOutput,
    MwfBartEncoder,
    MwfEncoderOutput,
)
from lsr.model.modules import RationaleModules, alignment_loss, masked_mean
from lsr.model.views import VIEW_REGISTRY, VIEWS, View, canonical_views, parse_views, rationale_text

AutoConfig.register(GatedBartConfig.model_type, GatedBartConfig, exist_ok=True)
AutoModelForSeq2SeqLM.register(GatedBartConfig, GatedBartForConditionalGeneration, exist_ok=True)

__all__ = [
    "VIEWS",
    "VIEW_REGISTRY",
    "View",
    "GatedBartConfig",
    "GatedBartDecoderLayer",
    "GatedBartForConditionalGeneration",
    "GatedBartOutput",
    "MwfBartEncoder",
    "MwfEncoderOutput",
    "RationaleModules",
    "alignment_loss",
    "canonical_views",
    "masked_mean",
    "mwf_fields",
    "parse_views",
    "rationale_text",
]
