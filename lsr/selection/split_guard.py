"""The guard that keeps Step 2 off held-out data: only training data may be filtered (docs/paper.md#split-guard).

A test or validation split filtered by the teacher's agreement with the gold summary would report inflated
scores, so :func:`check_split` refuses an input that looks like one unless the user forces it.

``pyarrow`` and the lsr modules that need them are imported inside the functions that use them: the ``lsr`` command
imports this module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

import pyarrow.compute as pc
import pyarrow.fs as pafs

from lsr.core.errors import InputError

#: Name tokens that mark a held-out split. "dev" counts: it is the usual name of a validation set (the shared
#: samples are named ``*_dev.jsonl`` and are in fact test-split rows, which is exactly what must not be filtered).
HELD_OUT_TOKENS = frozenset({"test", "tests", "testing", "val", "valid", "validation", "dev", "devel", "heldout"})
#: Parquet key-value metadata keys (and a column name) that may carry the split's name.
SPLIT_KEYS = ("split", "lsr.split", "source_split")
_SPLIT_FILES_CHECKED = 64


def held_out_tokens(names: Iterable[str]) -> set[str]:
    """Tokens of ``names`` (split on anything not a letter or digit) that mark a test or validation split.

    Whole tokens only: ``cnndm_dev`` and ``test-mined`` match, ``latest`` and ``contest`` do not.
    """
    found: set[str] = set()
    for name in names:
        found.update(t for t in re.split(r"[^a-z0-9]+", name.lower()) if t in HELD_OUT_TOKENS)
    return found


def _split_markers(fs: pafs.FileSystem, files: Sequence[str]) -> set[str]:
    """Split names recorded in the Parquet files: key-value metadata and a ``split`` column's values."""
    import pyarrow.parquet as pq

    markers: set[str] = set()
    for file in files[:_SPLIT_FILES_CHECKED]:
        inner = file.split("://", 1)[1] if "://" in file else file
        with fs.open_input_file(inner) as handle:
            parquet_file = pq.ParquetFile(handle)
            metadata = parquet_file.schema_arrow.metadata or {}
            for key in SPLIT_KEYS:
                value = metadata.get(key.encode())
                if value:
                    markers.add(value.decode("utf-8", errors="replace").strip())
            if "split" in parquet_file.schema_arrow.names:
                column = parquet_file.read(columns=["split"]).column("split")
                markers.update(str(v) for v in pc.unique(column).to_pylist() if v)
    return markers


def _mined_from(fs: pafs.FileSystem, root: str) -> str | None:
    """The input the mining run read, from the report it writes beside its output (``<output>.report.json``).

    A mined folder named ``mined/`` says nothing, but the file it was mined from (``xsum_test.jsonl``) does.
    Missing or unreadable reports say nothing either: the guard never fails on its own evidence.
    """
    import json

    try:
        with fs.open_input_stream(f"{root.rstrip('/')}.report.json") as handle:
            report = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    source = report.get("input_path") if isinstance(report, dict) else None
    return source if isinstance(source, str) and source else None


def check_split(path: str, *, force: bool = False) -> list[str]:
    """Refuse to filter a held-out split; return what marked it (empty when nothing did) for the report.

    Looked at: the input folder's own name and the names of the files under it (not the folders above it,
    which say where a run lives, not what it holds); the file the mining run read, as its report records it
    (its file name only); then the Parquet metadata key ``split`` and a ``split`` column. ``force`` turns the
    refusal into a recorded warning, for demos on the shared samples.
    """
    from lsr.core.storage import filesystem
    from lsr.data.io import resolve_files

    fs, files, _ = resolve_files(path)
    root = (path if "://" in path else os.path.abspath(path)).rstrip("/")
    names = [root.rsplit("/", 1)[-1]]
    names += [f[len(root):] if f.startswith(root) else f.rsplit("/", 1)[-1] for f in files]
    reasons = [f"name token {t!r}" for t in sorted(held_out_tokens(names))]
    source = _mined_from(fs, filesystem(path)[1])
    if source:
        reasons += [f"mined from {source} (token {t!r})"
                    for t in sorted(held_out_tokens([source.rstrip("/").rsplit("/", 1)[-1]]))]
    markers = _split_markers(fs, files)
    reasons += [f"split marker {m!r}" for m in sorted(markers) if m.lower() in HELD_OUT_TOKENS]
    if reasons and not force:
        raise InputError(
            f"{path}: looks like a test or validation split ({'; '.join(reasons)}); Step 2 filters training "
            "data only, and held-out splits must stay unfiltered. Point --input at a training split's mining "
            "output, or pass --force if this really is training data (or a demo)"
        )
    return reasons
