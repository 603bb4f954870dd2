"""Which rows a stage trains or scores on: the ``kept/`` folder of a selection output (or Parquet rows given
directly), without the rows whose mining failed."""

from __future__ import annotations

import pyarrow.compute as pc

from lsr.core.storage import is_folder, join
from lsr.data.io import resolve_files
from lsr.data.layout import KEPT


def training_dir(path: str) -> str:
    """The Parquet files to train on: ``DIR/kept`` of a selection output, or ``path`` itself."""

    kept = join(path, KEPT)
    try:
        if is_folder(kept):
            return kept
    except (OSError, ValueError):
        pass
    resolve_files(path)  # raises a clear InputError for a missing or unusable path
    return path


def drop_failed_rows(batch):
    """Rows whose mining failed (``error`` set) carry no rationale to align with; selection should not keep them."""

    if "error" not in batch.column_names:
        return batch
    error = batch.column("error")
    return batch.filter(pc.or_kleene(pc.is_null(error), pc.equal(error, "")))
