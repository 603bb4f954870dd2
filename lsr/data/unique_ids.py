"""Refusing a stage input whose ``id`` occurs more than once (two mining runs into one folder would double rows).

Every stage keys on ``id``; a doubled row would be scored, kept and trained on twice without a word. Reading only
the ``id`` column of each Parquet file is cheap, and it happens before Ray starts.
"""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq

from lsr.core.errors import InputError
from lsr.data.io import resolve_files


def check_unique_ids(path: str) -> None:
    """One :class:`InputError` line when an ``id`` occurs twice in the Parquet files under ``path``."""

    fs, files, fmt = resolve_files(path)
    if fmt != "parquet":
        return  # read_parquet_dir names the wrong format
    counts: Counter = Counter()
    for file in files:
        inner = file.split("://", 1)[1] if "://" in file else file
        with fs.open_input_file(inner) as handle:
            schema = pq.read_schema(handle)
            if "id" not in schema.names:
                return  # the column check names the missing column
            counts.update(pq.read_table(handle, columns=["id"]).column("id").to_pylist())
    doubled = [i for i, n in counts.items() if n > 1]
    if doubled:
        shown = ", ".join(map(str, doubled[:3]))
        raise InputError(
            f"{path}: {len(doubled)} id(s) occur more than once (e.g. {shown}); was it written by two runs at once? "
            "Each id must appear once: mine again into a new folder"
        )
