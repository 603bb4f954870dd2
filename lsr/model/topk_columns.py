"""How an offline teacher's top-k travels: three Parquet columns per training row, padded per batch like the labels.

Per row (``k`` kept entries per summary token):

- ``teacher_labels``   list<int32>:          the row's labels as the run builds them (checked against them);
- ``teacher_topk_ids`` list<int32>,   n * k:  row-major ``[position, rank]``, best first, for the ``n`` scored
  positions (every summary token: all labels of a seq2seq row, the non-prompt ones of a causal row), in order;
- ``teacher_topk_logprobs`` list<float32>, n * k: the teacher's log-probabilities (T = 1) of those ids.

Flat lists (not lists of lists) keep the columns ragged in one dimension only, like ``input_ids``, so Ray Data
and the padding treat them the same way; ``k`` is the length ratio, checked when a batch is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

LABELS, IDS, LOGPROBS = "teacher_labels", "teacher_topk_ids", "teacher_topk_logprobs"
TEACHER_COLUMNS: tuple[str, ...] = (LABELS, IDS, LOGPROBS)
LABEL_PAD = -100


def pad_teacher_column(name: str, sequences: Sequence[Sequence[float]]) -> torch.Tensor:
    """One teacher column of a batch, padded to its longest row (labels with -100, ids with 0, log-probs with 0)."""
    dtype = np.float32 if name == LOGPROBS else np.int64
    value = LABEL_PAD if name == LABELS else 0
    longest = max((len(s) for s in sequences), default=0)
    out = np.full((len(sequences), max(longest, 1)), value, dtype=dtype)
    for i, seq in enumerate(sequences):
        out[i, : len(seq)] = seq
    return torch.from_numpy(out)


def topk_from_batch(batch: Mapping[str, torch.Tensor], mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, logprobs)`` of shape ``(summary tokens, k)``, in the order of ``logits[mask]``.

    ``mask`` marks the scored positions of the aligned labels (every label of a seq2seq row; the summary part of a
    causal row). Raises ``ValueError`` when the teacher pass scored other tokens than the run trains on (another
    tokenizer, target length or summary column), which would silently distil the wrong positions.
    """
    labels, scored = batch["labels"], batch[LABELS]
    if labels.shape != scored.shape or not torch.equal(labels, scored):
        raise ValueError(
            "the teacher pass scored other summary tokens than this run trains on; run the pass with the "
            "student's tokenizer, the same --target-max-tokens and the same summary column"
        )
    per_row = mask.sum(dim=1)  # scored positions of each row
    flat_ids, flat_logprobs = batch[IDS], batch[LOGPROBS]
    longest = int(per_row.max()) if len(per_row) else 0
    if longest == 0 or flat_ids.shape[1] % longest:
        raise ValueError(f"teacher top-k columns of width {flat_ids.shape[1]} do not split into {longest} positions")
    k = flat_ids.shape[1] // longest
    stored = torch.arange(longest, device=mask.device)[None, :] < per_row[:, None]  # (rows, longest)
    ids = flat_ids[:, : longest * k].reshape(len(per_row), longest, k)[stored]
    logprobs = flat_logprobs[:, : longest * k].reshape(len(per_row), longest, k)[stored]
    return ids, logprobs
