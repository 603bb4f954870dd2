"""Training examples: rationale texts from a selection row, tokenisation in Ray Data, padding per batch.

The MWF alignment targets are not computed here: the target pass (:mod:`lsr.training.targets`) stores them with
the rows once, and this module carries them into the batch as constants.

Rows are tokenised once in Ray Data into ragged id lists (no padding); each training batch is padded to its
own longest row by :func:`pad_batch`, which is where attention masks and the ``-100`` label padding come from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lsr.core.errors import InputError
from lsr.model.views import VIEWS, view_columns

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
    source_max_tokens: int,
    target_max_tokens: int,
    summary_column: str = "summary",
    causal: bool = False,
) -> dict[str, list[list[int]]]:
    """Ragged token ids of a batch of rows: ``input_ids`` (the document) and ``labels`` (the target summary).

    ``summary_column`` is the target: the gold ``summary``, or the LLM's ``total_summary`` (sequence-level KD).
    Rationale texts are not tokenised here: the training step reads their stored target vectors instead.
    A ``causal`` student reads one sequence instead: ``input_ids`` is the prompt (instruction + document) followed
    by the summary, and ``labels`` is the same with -100 on the prompt (:func:`lsr.kd.causal.causal_rows`).
    """
    if causal:
        from lsr.kd.causal import causal_rows

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

    from lsr.kd.topk_columns import TEACHER_COLUMNS, pad_teacher_column

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


def training_dir(path: str) -> str:
    """The Parquet files to train on: ``DIR/kept`` of a selection output, or ``path`` itself."""
    import pyarrow.fs as pafs

    from lsr.data.io import resolve_files

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
    path: str, views: Sequence[str], extra_columns: Sequence[str] = (), summary_column: str = "summary"
) -> tuple[ray.data.Dataset, int, int]:
    """The selected rows under ``path``, their count, and how many rows with a mining error were left out.

    ``extra_columns`` are further columns the objective reads (checked up front like the others). An empty set is
    an error rather than a run that trains on nothing.
    """
    from lsr.data.io import read_parquet_dir

    source = training_dir(path)
    raw = read_parquet_dir(source, required_columns(views, extra_columns, summary_column)).materialize()
    total = raw.count()
    ds = raw.map_batches(drop_failed_rows, batch_format="pyarrow").materialize()
    count = ds.count()
    if count == 0:
        raise InputError(
            f"{source}: the training set is empty ({total} rows read, {total - count} with a mining error); "
            "did selection keep any example?"
        )
    return ds, count, total - count
