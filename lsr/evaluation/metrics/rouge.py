"""ROUGE-1, ROUGE-2 and ROUGE-Lsum F1, Table 2's first three columns, x100.

The scoring itself is :mod:`lsr.data.rouge`, shared with training's validation so both report the same figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lsr.data.rouge import ROUGE_KEYS, rouge_scores
from lsr.evaluation.metrics.base import Column, Metric, fixed


def score(predictions: Sequence[str], references: Sequence[str], resolved: Any) -> dict[str, list[float]]:
    rows = rouge_scores(predictions, references)
    return {key: [row[key] for row in rows] for key in ROUGE_KEYS}


def describe(meta: Mapping[str, Any]) -> str:
    return "ROUGE F1 x100 with stemming; R-L is ROUGE-Lsum (one sentence a line)."


ROUGE = Metric(
    name="rouge",
    per="example",
    columns=(
        Column("rouge1", "R-1", fixed(2, scale=100)),
        Column("rouge2", "R-2", fixed(2, scale=100)),
        Column("rougeLsum", "R-L", fixed(2, scale=100)),
    ),
    describe=describe,
    score=score,
)
