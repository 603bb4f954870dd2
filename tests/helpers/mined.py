"""What an ``lsr mine`` output folder holds now, read as a watcher would while the run goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from lsr.data.layout import MANIFEST


def listed_ids(out: Path) -> list[str]:
    """The ids in the files the folder's manifest lists (none before the first file); a file being replaced at that
    moment is skipped."""
    if not (out / MANIFEST).exists():
        return []
    ids: list[str] = []
    for name in json.loads((out / MANIFEST).read_text())["files"]:
        try:
            ids += pq.read_table(out / name, columns=["id"]).column("id").to_pylist()
        except (OSError, ValueError):
            pass  # removed or replaced between the manifest's read and this one
    return ids
