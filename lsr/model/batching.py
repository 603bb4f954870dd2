"""Rows to model inputs: tokenisation into ragged id lists (in Ray Data, once) and padding per batch.

Every stage that feeds a student or a teacher tokenises through here (training, the KD teacher passes, the target
pass, AS-ES), so a teacher scores exactly the tokens a student trains on. Each batch is padded to its own longest
row by :func:`pad_batch`, which is where attention masks and the ``-100`` label padding come from.

``pyarrow``, ``torch`` are imported inside the functions that use them: the ``lsr`` command imports this module at
start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lsr.model.causal_prompt import causal_rows
from lsr.model.topk_columns import LABEL_PAD, TEACHER_COLUMNS, pad_teacher_column
from lsr.model.views import VIEWS

if TYPE_CHECKING:
    import ray.data
    import torch


def tokenize_rows(
    rows: Mapping[str, Sequence[Any]],
    tokenizer: Any,
    *,
    source_max_tokens: int,
    target_max_tokens: int,
    summary_column: str = "summary",
    causal: bool = False,
) -> dict[str, list[list[int]]]:
    """Ragged token ids of a batch of rows: ``input_ids`` (the document) and ``labels`` (the target summary).

    ``summary_column`` is the target: the gold ``summary``, or the LLM's ``total_summary`` (sequence-level KD).
    Rationale texts are not tokenised here: the training step reads their stored target vectors instead.
    A ``causal`` student reads one sequence instead: ``input_ids`` is the prompt (instruction + document) followed
    by the summary, and ``labels`` is the same with -100 on the prompt (:func:`lsr.model.causal_prompt.causal_rows`).
    """
    if causal:
        rows = causal_rows(tokenizer, list(rows["document"]), list(rows[summary_column]),
                           source_max_tokens=source_max_tokens, target_max_tokens=target_max_tokens)
        return {"input_ids": rows["input_ids"], "labels": rows["labels"]}
    return {
        "input_ids": tokenizer(list(rows["document"]), truncation=True, max_length=source_max_tokens)["input_ids"],
        "labels": tokenizer(list(rows[summary_column]), truncation=True, max_length=target_max_tokens)["input_ids"],
    }


def _tokenize_arrow_batch(batch, tokenizer, keep: Sequence[str], summary_column: str, **kwargs):
    import pyarrow as pa

    rows = {"document": batch.column("document").to_pylist(), summary_column: batch.column(summary_column).to_pylist()}
    ids = tokenize_rows(rows, tokenizer, summary_column=summary_column, **kwargs)
    columns = {name: pa.array(value, pa.list_(pa.int32())) for name, value in ids.items()}
    columns.update({name: batch.column(name) for name in keep})
    return pa.table(columns)


def tokenize_dataset(
    ds: ray.data.Dataset,
    tokenizer: Any,
    *,
    source_max_tokens: int,
    target_max_tokens: int,
    keep: Sequence[str] = (),
    summary_column: str = "summary",
    causal: bool = False,
) -> ray.data.Dataset:
    """``ds`` (training rows) as a Ray Dataset of ragged token ids, tokenised in parallel by Ray Data; the columns
    in ``keep`` (stored alignment targets, a teacher's top-k) are carried through unchanged; ``causal``: the
    decoder-only layout (:func:`tokenize_rows`)."""
    return ds.select_columns(list(dict.fromkeys(["document", summary_column, *keep]))).map_batches(
        _tokenize_arrow_batch,
        batch_format="pyarrow",
        fn_kwargs={
            "tokenizer": tokenizer,
            "keep": list(keep),
            "summary_column": summary_column,
            "causal": causal,
            "source_max_tokens": source_max_tokens,
            "target_max_tokens": target_max_tokens,
        },
    )


def _pad(sequences: Sequence[Sequence[int]], value: int) -> tuple[np.ndarray, np.ndarray]:
    longest = max((len(s) for s in sequences), default=0)
    ids = np.full((len(sequences), max(longest, 1)), value, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1
    return ids, mask


def pad_batch(batch: Mapping[str, Sequence[Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Model inputs for a batch: padded ids, attention masks, labels padded with -100, and, when the batch holds
    stored targets (``<view>_target`` / ``<view>_present`` for every registry view), ``view_targets`` (batch,
    view, d_model; float32 whatever the stored precision) and ``view_target_mask`` (batch, view)."""
    import torch

    out: dict[str, torch.Tensor] = {}
    for name, sequences in batch.items():
        if name in TEACHER_COLUMNS:
            out[name] = pad_teacher_column(name, sequences)
        elif name == "labels":
            labels, _ = _pad(sequences, LABEL_PAD)
            out["labels"] = torch.from_numpy(labels)
        elif name.endswith("input_ids"):
            ids, mask = _pad(sequences, pad_token_id)
            out[name] = torch.from_numpy(ids)
            out[name.replace("input_ids", "attention_mask")] = torch.from_numpy(mask)
    vectors = [f"{view}_target" for view in VIEWS]
    if all(name in batch for name in vectors):
        out["view_targets"] = torch.from_numpy(
            np.stack([np.stack([np.asarray(v, dtype=np.float32) for v in batch[name]]) for name in vectors], axis=1)
        )
        out["view_target_mask"] = torch.from_numpy(
            np.stack([np.asarray(batch[f"{view}_present"], dtype=bool) for view in VIEWS], axis=1)
        )
    return out
