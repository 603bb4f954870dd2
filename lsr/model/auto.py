"""The one door through which lsr reads a checkpoint's config or loads its model.

lsr saves its MWF student with ``model_type = "gated_bart"``, a type transformers knows only after
:mod:`lsr.model.gated_bart` has registered it with the Auto classes. Any ``AutoConfig.from_pretrained`` that runs
before that import refuses an MWF checkpoint ("Transformers does not recognize this architecture"), and which
import ran first depended on the command (``lsr train --objective logit-kd --teacher MWF_DIR`` read the teacher's
config first and failed). Every loader goes through :func:`read_config` or :func:`load_pretrained`, which register
first, so no caller has to remember.

``transformers`` and the lsr modules that need them are imported inside the functions that use them, so that
importing this module for one of its functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

from typing import Any


def register_model_types() -> None:
    """Register lsr's model types (``gated_bart``) with transformers' Auto classes; cheap after the first call."""
    import lsr.model.gated_bart  # noqa: F401  (registration runs at import)


def read_config(path: str, **kwargs: Any) -> Any:
    """``AutoConfig.from_pretrained(path)`` with lsr's model types registered first."""
    from transformers import AutoConfig

    register_model_types()
    return AutoConfig.from_pretrained(path, **kwargs)


def auto_model_class(config: Any) -> Any:
    """The Auto class that builds ``config``'s model: seq2seq for encoder-decoders, causal LM otherwise."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM


def load_pretrained(path: str, config: Any | None = None, **kwargs: Any) -> Any:
    """The model saved at ``path``, in the class its config records (an MWF student, BART or a causal LM)."""
    config = config if config is not None else read_config(path)
    return auto_model_class(config).from_pretrained(path, **kwargs)
