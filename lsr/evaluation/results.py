"""The results table: one row per model in the layout of the paper's Table 2, then the added measures.

The columns, their order, headers, formats and the notes under the table are the metric registry's
(:mod:`lsr.evaluation.metrics.registry`): Table 2's come first (R-1, R-2, R-L as ROUGE-Lsum, BERTScore, all x100
except BS, and the number of examples), then the measures of the logit-KD paper. A model's row in
``results.json`` holds every registered column's key (``null`` when not measured), so a reader finds each key
whichever metrics a run measured. Written as ``results.md`` and ``results.json`` through :mod:`lsr.core.storage`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsr.core.storage import filesystem
from lsr.data.layout import RESULTS_JSON, RESULTS_MD
from lsr.evaluation.metrics.registry import columns
from lsr.evaluation.metrics.registry import notes as column_notes


@dataclass
class ModelResult:
    """One row of the results table: the model, where its per-example scores are, and its figures by column key
    (averages of per-example scores, x1; per-model figures as measured; a key left out was not measured)."""

    name: str
    path: str
    examples: int
    predictions: str
    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The row as ``results.json`` keeps it: every registered column's key, ``None`` where not measured."""
        row: dict[str, Any] = {"name": self.name, "path": self.path, "examples": self.examples}
        for column in columns():
            row.setdefault(column.key, self.values.get(column.key))
        return {**row, "predictions": self.predictions, "extra": self.extra}


def model_names(paths: Sequence[str]) -> list[tuple[str, str]]:
    """``(name, path)`` per ``--model``: ``NAME=PATH`` names a model, else its folder's name (made unique)."""
    named: list[tuple[str, str]] = []
    for spec in paths:
        name, sep, path = spec.partition("=")
        if not sep or not name or os.path.exists(spec):
            # A dual AS-ES student (ES_DIR+AS_DIR, lsr.ases.student) is named after both of its folders.
            parts = spec.split("+") if "+" in spec and not os.path.exists(spec) else [spec]
            name, path = "+".join(_folder_name(part) for part in parts), spec
        named.append((name, path))
    counts: dict[str, int] = {}
    unique = []
    for name, path in named:
        counts[name] = counts.get(name, 0) + 1
        unique.append((name if counts[name] == 1 else f"{name}-{counts[name]}", path))
    return unique


def _folder_name(spec: str) -> str:
    """A checkpoint's name: its folder's, or its run's when the folder is the ``model``/``final`` of a run."""
    name = Path(spec.rstrip("/")).name or spec
    if name in ("model", "final") and Path(spec).parent.name:
        name = Path(spec.rstrip("/")).parent.name
    return name


def markdown_table(results: Sequence[ModelResult], dataset: str) -> str:
    """Table 2's layout (R-1 / R-2 / R-L x100, ROUGE-Lsum, and BERTScore), then the added measures."""
    title = {"cnndm": "CNN/DM", "xsum": "XSum"}.get(dataset, dataset)
    shown = columns()
    headers = [column.header for column in shown]
    headers[0] = f"{title} {headers[0]}"
    lines = [f"| Model | {' | '.join(headers)} |", "|---|" + "---:|" * len(shown)]
    for result in results:
        row = result.as_dict()
        lines.append(f"| {result.name} | {' | '.join(column.cell(row.get(column.key)) for column in shown)} |")
    return "\n".join(lines) + "\n"


def notes(meta: dict[str, Any]) -> str:
    """What every column measures, under the table."""
    return f"\n{column_notes(meta)} Data: {meta.get('data')} ({meta.get('examples')} examples).\n"


def write_tables(results: Sequence[ModelResult], output: str, dataset: str, meta: dict[str, Any]) -> str:
    """``results.json`` and ``results.md`` under ``output`` (local or ``s3://``); returns the markdown."""
    payload = {**meta, "models": [r.as_dict() for r in results]}
    markdown = markdown_table(results, dataset) + notes(meta)
    fs, inner = filesystem(output)
    fs.create_dir(inner, recursive=True)
    for name, text in ((RESULTS_JSON, json.dumps(payload, indent=2) + "\n"), (RESULTS_MD, markdown)):
        with fs.open_output_stream(f"{inner.rstrip('/')}/{name}") as handle:
            handle.write(text.encode("utf-8"))
    return markdown
