"""MWF alignment targets, encoded once: each row's EA/AS/TER texts through the initial checkpoint's encoder.

The paper aligns each rationale module with the *previously encoded* rationale texts (docs/paper.md#targets): a fixed
encoder, the initial checkpoint's (the pretrained BART, or the tiny model's initial weights for a seed), not the
encoder being trained. So the targets are constants of the data set, computed once by a Ray Data pass
(:mod:`lsr.training.target_pass`) and stored with the rows; training reads them and encodes no rationale text.

Per row and view (every view of :mod:`lsr.model.views`, whatever the run's ``--views``, so ablations reuse them):

- ``<view>_target``: the mean over real tokens of the encoder's last hidden states of the view's text
  (``float32``, or ``float16`` to halve the storage: the cosine loss does not need more than half precision for
  a target, and the training step casts it back to float32);
- ``<view>_present``: false when the view's text is empty (e.g. no triples); such a row has no term for the view;
- ``<view>_truncated``: true when the text was longer than ``--rationale-max-tokens`` and was cut.

The stored vectors are keyed (:func:`target_key`) by the encoder checkpoint (path and a fingerprint of its files;
for ``tiny``, the seed), the text settings (the views registry's format version, ``--rationale-max-tokens``), the
dtype and the training files: any change computes a new set; anything else reuses the stored one.

``pyarrow`` and the lsr modules that need them are imported inside the functions that use them: the ``lsr`` command
imports this module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from lsr.core.config import StrictModel
from lsr.model.views import VIEWS, rationale_text, view_columns

TargetDtype = Literal["float16", "float32"]
#: Bumped whenever :mod:`lsr.model.views` changes how a view's text is written (it changes every target).
TEXT_FORMAT_VERSION = 1
#: The columns a target set carries from the training rows (what the training step needs besides the targets).
CARRIED_COLUMNS = ("id", "document", "summary")


class TargetOptions(StrictModel):
    """The options of the target pass; ``lsr train`` and ``lsr targets`` both have them (declared once here)."""

    rationale_max_tokens: int = Field(default=256, ge=1, description="truncation of each rationale text")
    target_dtype: TargetDtype = Field(
        default="float32", description="storage precision of the target vectors (float16 halves the files)"
    )
    targets_dir: str | None = Field(
        default=None,
        description="folder of the stored alignment targets, local or s3:// (default: DATA/targets for a selection "
        "output, else DATA.targets); one sub-folder per encoder and text setting",
    )
    target_batch_size: int = Field(default=32, ge=1, description="rows per batch of the target pass")
    target_actors: int = Field(default=1, ge=1, description="encoder actors of the target pass (one model each)")


def target_columns(view: str) -> tuple[str, str, str]:
    """The stored columns of ``view``: its vector, whether it is present, whether its text was truncated."""
    return f"{view}_target", f"{view}_present", f"{view}_truncated"


def target_key(checkpoint: str, seed: int, options: TargetOptions, data_fingerprint: str) -> str:
    """A short, stable name for one target set (see the module docstring for what it depends on)."""
    identity = {
        "checkpoint": str(Path(checkpoint).resolve()) if Path(checkpoint).is_dir() else checkpoint,
        "checkpoint_files": checkpoint_fingerprint(checkpoint),
        "seed": seed if checkpoint == "tiny" else None,
        "views": list(VIEWS),
        "text_format": TEXT_FORMAT_VERSION,
        "rationale_max_tokens": options.rationale_max_tokens,
        "dtype": options.target_dtype,
        "data": data_fingerprint,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def checkpoint_fingerprint(checkpoint: str) -> str:
    """Names, sizes and modification times of a local checkpoint's files (a retrained folder gets a new key)."""
    path = Path(checkpoint)
    if checkpoint == "tiny" or not path.is_dir():
        return ""
    stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file())
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def fixed_encoder(checkpoint: str, seed: int):
    """``(model, tokenizer)`` whose encoder is the initial checkpoint's (the student's at step 0, for any views).

    The encoder's weights do not depend on the views (the modules are initialised after it), so one target set
    serves every ablation of a run.
    """
    from lsr.model.loading import load_student

    model, tokenizer = load_student(checkpoint, {"mwf_views": []}, seed=seed)
    return model.eval(), tokenizer


@torch.no_grad()
def encode_texts(
    model: Any, tokenizer: Any, texts: Sequence[str], max_tokens: int, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean-pooled fixed-encoder vectors of ``texts`` (float32, (n, d_model)), and per text whether it is
    non-empty and whether it was truncated. An empty text gets a zero vector (and is marked absent)."""
    from lsr.model.modules import masked_mean

    present = np.array([bool(t.strip()) for t in texts])
    vectors = np.zeros((len(texts), model.config.d_model), dtype=np.float32)
    full_lengths = [len(ids) for ids in tokenizer(list(texts))["input_ids"]]
    truncated = np.array([n > max_tokens for n in full_lengths]) & present
    rows = [i for i, keep in enumerate(present) if keep]
    if rows:
        enc = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_tokens, padding=True,
                        return_tensors="pt").to(device)
        states = model.model.encoder.encode_targets(enc["input_ids"], enc["attention_mask"])
        vectors[rows] = masked_mean(states, enc["attention_mask"]).float().cpu().numpy()
    return vectors, present, truncated


def encode_rows(
    rows: Mapping[str, Sequence[Any]], model: Any, tokenizer: Any, max_tokens: int, dtype: TargetDtype,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """The target columns of a batch of training rows (plus the carried columns), as Python/NumPy values."""
    out: dict[str, Any] = {name: list(rows[name]) for name in CARRIED_COLUMNS}
    for view, column in zip(VIEWS, view_columns(VIEWS), strict=True):
        texts = [rationale_text(view, value) for value in rows[column]]
        vectors, present, truncated = encode_texts(model, tokenizer, texts, max_tokens, device)
        vector, present_name, truncated_name = target_columns(view)
        out[vector] = vectors.astype(dtype)
        out[present_name] = present
        out[truncated_name] = truncated
    return out


class TargetEncoder:
    """The target pass's Ray Data actor: one fixed encoder per actor, loaded once, applied batch after batch."""

    def __init__(self, checkpoint: str, seed: int, max_tokens: int, dtype: TargetDtype, use_gpu: bool = False):
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
        self.model, self.tokenizer = fixed_encoder(checkpoint, seed)
        self.model.to(self.device)
        self.max_tokens, self.dtype = max_tokens, dtype

    def __call__(self, batch):
        import pyarrow as pa

        rows = {name: batch.column(name).to_pylist() for name in batch.column_names}
        out = encode_rows(rows, self.model, self.tokenizer, self.max_tokens, self.dtype, self.device)
        element = pa.float16() if self.dtype == "float16" else pa.float32()
        columns = {}
        for name, value in out.items():
            if name.endswith("_target"):
                flat = pa.array(np.ascontiguousarray(value).reshape(-1), element)
                columns[name] = pa.FixedSizeListArray.from_arrays(flat, value.shape[1])
            else:
                columns[name] = pa.array(value.tolist() if isinstance(value, np.ndarray) else value)
        return pa.table(columns)
