"""AS-ES training rows from segmented rows: "chain so far + document -> next turn", per variant.

- ``dual-es``: the ES model's rows, one per ES turn of each chain (an empty opening ES turn included: the model
  must learn to write nothing when the chain opens with an abstraction);
- ``dual-as``: the AS model's rows, one per AS turn (the last one carries ``Summary: ...``);
- ``unified``: every turn, the source prefixed with the type to write (:data:`lsr.ases.chain.PREFIX`).

A row keeps the training input's columns (``id``, ``document`` = the source text, ``summary`` = the turn to
write), so the ordinary tokenisation and loop train on it unchanged; ``id`` is ``<row id>#<turn index>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pyarrow as pa

from lsr.ases.chain import Segment, Turn, source_text, turns

Variant = Literal["dual-es", "dual-as", "unified"]
VARIANTS: tuple[str, ...] = ("dual-es", "dual-as", "unified")
#: The columns a segmented row must have to become training rows.
SEGMENTED_COLUMNS = ("id", "document", "segments", "total_summary")


def row_segments(value: Any) -> list[Segment]:
    """The ``segments`` column of one row (a list of mappings) as :class:`Segment` objects."""
    return [Segment(str(s["text"]), s["type"], str(s["role"]), int(s["item"]), float(s.get("score") or 0.0))
            for s in value or []]


def training_examples(row: Mapping[str, Any], variant: Variant) -> list[dict[str, str]]:
    """The training rows of one segmented row for ``variant`` (module docstring)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown AS-ES variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    chain: list[Turn] = turns(row_segments(row["segments"]), str(row["total_summary"] or ""))
    examples = []
    for index, turn in enumerate(chain):
        if variant != "unified" and turn.type != ("ES" if variant == "dual-es" else "AS"):
            continue
        examples.append({
            "id": f"{row['id']}#{index}",
            "document": source_text(str(row["document"]), chain[:index], turn.type, unified=variant == "unified"),
            "summary": turn.text,
        })
    return examples


def training_batch(batch, variant: Variant):
    """Ray Data ``map_batches`` function: segmented rows (pyarrow) -> training rows (pyarrow)."""

    rows = batch.select(list(SEGMENTED_COLUMNS)).to_pylist()
    out = [example for row in rows for example in training_examples(row, variant)]
    schema = pa.schema([("id", pa.string()), ("document", pa.string()), ("summary", pa.string())])
    return pa.Table.from_pylist(out, schema=schema)
