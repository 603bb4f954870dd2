"""Training examples: rationale texts from a selection row, tokenisation in Ray Data, padding per batch.

The MWF alignment targets are the rationale's views written out as text (the format is the views registry's,
:mod:`lsr.model.views`) and encoded by BART's encoder (DESIGN.md §3).

Rows are tokenised once in Ray Data into ragged id lists (no padding); each training batch is padded to its
own longest row by :func:`pad_batch`, which is where attention masks and the ``-100`` label padding come from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lsr.errors import InputError
from lsr.model.views import rationale_text, view_columns

if TYPE_CHECKING:
    import ray.data
    import torch

LABEL_PAD = -100


def required_columns(views: Sequence[str], extra: Sequence[str] = (), summary_column: str = "summary") -> list[str]:
    """The columns a training input must have for ``views``, an objective's ``extra`` ones and the target column."""
    return list(dict.fromkeys(["id", "document", summary_column, *view_columns(views), *extra]))


def tokenize_rows(
    rows: Mapping[str, Sequence[Any]],
    tokenizer: Any,
    *,
    views: Sequence[str],
    source_max_tokens: int,
    target_max_tokens: int,
    rationale_max_tokens: int,
    summary_column: str = "summary",
) -> dict[str, list[list[int]]]:
    """Ragged token ids of a batch of rows: ``input_ids``, ``labels`` and ``<view>_input_ids`` per view.

    ``summary_column`` is the target: the gold ``summary``, or the LLM's ``total_summary`` (sequence-level KD).
    """
    out: dict[str, list[list[int]]] = {
        "input_ids": tokenizer(list(rows["document"]), truncation=True, max_length=source_max_tokens)["input_ids"],
        "labels": tokenizer(list(rows[summary_column]), truncation=True, max_length=target_max_tokens)["input_ids"],
    }
    for view, column in zip(views, view_columns(views), strict=True):
        texts = [rationale_text(view, value) for value in rows[column]]
        out[f"{view}_input_ids"] = tokenizer(texts, truncation=True, max_length=rationale_max_tokens)["input_ids"]
    return out


def _tokenize_arrow_batch(batch, tokenizer, passthrough=(), **kwargs):
    import pyarrow as pa

    rows = {name: batch.column(name).to_pylist() for name in batch.column_names}
    ids = tokenize_rows(rows, tokenizer, **kwargs)
    table = pa.table({name: pa.array(value, pa.list_(pa.int32())) for name, value in ids.items()})
    for name in passthrough:  # already-numeric columns an objective reads as they are (a teacher's top-k)
        table = table.append_column(name, batch.column(name))
    return table


def tokenize_dataset(
    ds: ray.data.Dataset,
    tokenizer: Any,
    *,
    views: Sequence[str],
    source_max_tokens: int,
    target_max_tokens: int,
    rationale_max_tokens: int,
    passthrough: Sequence[str] = (),
    summary_column: str = "summary",
) -> ray.data.Dataset:
    """``ds`` (selection rows) as a Ray Dataset of ragged token ids, tokenised in parallel by Ray Data.

    ``passthrough`` columns (an objective's :meth:`data_columns`) are kept as they are beside the ids.
    """
    return ds.select_columns(required_columns(views, passthrough, summary_column)).map_batches(
        _tokenize_arrow_batch,
        batch_format="pyarrow",
        fn_kwargs={
            "tokenizer": tokenizer,
            "passthrough": list(passthrough),
            "views": list(views),
            "source_max_tokens": source_max_tokens,
            "target_max_tokens": target_max_tokens,
            "rationale_max_tokens": rationale_max_tokens,
            "summary_column": summary_column,
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


def pad_batch(batch: Mapping[str, Sequence[Sequence[int]]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Model inputs for a batch of ragged ids: padded ids, attention masks, labels padded with -100."""
    import torch

    from lsr.distill.topk_columns import TEACHER_COLUMNS, pad_teacher_column

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
    return out


def training_dir(path: str) -> str:
    """The Parquet files to train on: ``DIR/kept`` of a selection output, or ``path`` itself."""
    import pyarrow.fs as pafs

    from lsr.io import resolve_files

    kept = path.rstrip("/") + "/kept"
    try:
        fs, inner = pafs.FileSystem.from_uri(kept) if "://" in kept else (pafs.LocalFileSystem(), kept)
        if fs.get_file_info(inner).type == pafs.FileType.Directory:
            return kept
    except (OSError, ValueError):
        pass
    resolve_files(path)  # raises a clear InputError for a missing or unusable path
    return path


def drop_failed_rows(batch):
    """Rows whose mining failed (``error`` set) carry no rationale to align with; selection should not keep them."""
    import pyarrow.compute as pc

    if "error" not in batch.column_names:
        return batch
    error = batch.column("error")
    return batch.filter(pc.or_kleene(pc.is_null(error), pc.equal(error, "")))


def read_training_rows(
    path: str, views: Sequence[str], extra: Sequence[str] = (), summary_column: str = "summary"
) -> tuple[ray.data.Dataset, int, int]:
    """The selected rows under ``path``, their count, and how many rows with a mining error were left out.

    An empty set is an error rather than a run that trains on nothing.
    """
    from lsr.io import read_parquet_dir

    source = training_dir(path)
    raw = read_parquet_dir(source, required_columns(views, extra, summary_column)).materialize()
    total = raw.count()
    ds = raw.map_batches(drop_failed_rows, batch_format="pyarrow").materialize()
    count = ds.count()
    if count == 0:
        raise InputError(
            f"{source}: the training set is empty ({total} rows read, {total - count} with a mining error); "
            "did selection keep any example?"
        )
    return ds, count, total - count
