"""A tiny MWF student saved as ``lsr train`` lays a run out, for the serving tests and benches (nothing downloaded:
the architecture comes from a config and the tokenizer is the shipped one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save_tiny_student(run: Path, *, seed: int = 0, report: dict[str, Any] | None = None, **mwf: Any) -> str:
    """The tiny student with all three views (``mwf``: other ``mwf_*`` settings) in ``run/model``, and ``report``
    as ``run/train_report.json`` when given; returns the model folder."""
    from lsr.model.loading import tiny_model

    model, tokenizer = tiny_model({"mwf_views": ["ea", "as", "ter"], **mwf}, seed=seed)
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    if report is not None:
        (run / "train_report.json").write_text(json.dumps(report))
    return str(run / "model")
