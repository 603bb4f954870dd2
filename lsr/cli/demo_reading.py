"""What the demo's figures can and cannot say, printed under its table.

The demo trains tiny random-init models (the ``tiny`` preset, under a million parameters) for a hundred steps on
a few dozen documents: their ROUGE figures are noise around a few points, and which method comes out ahead says
nothing about the methods (the paper's Table 2 needs BART-large on the full corpus). What such a run does show is
the machinery moving: the MWF student's weak gates leave their initial value, and its alignment losses (1 - cos
between each rationale module and the encoded rationale) fall. This module reads those two from the run's
``history.jsonl`` and words them.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from statistics import mean
from typing import Any

from lsr.data.layout import HISTORY_FILE

WIDTH = 110


def _steps(history: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if "loss" in row]  # validation rows carry only val_* figures


def _mean_of(row: dict[str, Any], prefix: str) -> float | None:
    values = [v for k, v in row.items() if k.startswith(prefix) and isinstance(v, int | float)]
    return mean(values) if values else None


def moving_parts(run: Path) -> list[str]:
    """Lines on how the MWF student's gates and alignment losses moved between its first and last step."""
    history = run / HISTORY_FILE
    if not history.is_file():
        return []
    steps = _steps(history)
    if len(steps) < 2:
        return []
    first, last = steps[0], steps[-1]
    lines = []
    gate_first, gate_last = _mean_of(first, "gate/"), _mean_of(last, "gate/")
    if gate_first is not None and gate_last is not None:
        lines.append(f"weak gates (mean over views and layers): {gate_first:.4f} at step {first['step']} -> "
                     f"{gate_last:.4f} at step {last['step']}")
    align_first, align_last = _mean_of(first, "loss/align_"), _mean_of(last, "loss/align_")
    if align_first is not None and align_last is not None:
        lines.append(f"alignment loss (1 - cos, mean over views): {align_first:.3f} -> {align_last:.3f}")
    return lines


def reading(run: Path, steps: int) -> str:
    """The note printed under the demo's table."""
    lines = textwrap.wrap(
        f"How to read this table: every model here is a tiny random-init model (under a million parameters) trained "
        f"for {steps} steps on a few dozen documents. Its ROUGE figures are noise around a few points and cannot "
        "rank the methods; that takes BART-large on the full corpus (the paper's Table 2). What this run does show "
        "is the machinery at work:", width=WIDTH)
    lines += [f"  {line}" for line in moving_parts(run)] or ["  (the MWF student's history is missing)"]
    return "\n".join(lines)
