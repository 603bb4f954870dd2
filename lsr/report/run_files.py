"""Reading a run directory (the layout ``lsr demo`` writes) for the report, one small loader per file.

A loader returns what it read or raises :class:`MissingPart` with a sentence naming the file and what is wrong
with it, so a section can show that sentence in place of its content: a run stopped half-way, or one whose
stages were run by hand into other folders, still gets a report of what is there.

    RUN/data/*.jsonl              the documents (demo: train.jsonl, test.jsonl)
    RUN/mined/, mined.report.json the mining stage's rationales and report
    RUN/selected/report.json      selection's figures (Table 1, reasons, score histogram), scores.png
    RUN/<model>/history.jsonl     a trained model's per-step history (+ gates.png, train_report.json, model/)
    RUN/eval/results.json         the evaluation table; RUN/eval/<name>/predictions.parquet per model

``pyarrow`` and the lsr modules that need them are imported inside the functions that use them, so that importing
this module for one of its functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsr.data.layout import (
    HISTORY_FILE,
    MODEL_DIR,
    PREDICTIONS_FILE,
    TRAIN_REPORT,
    mining_report_paths,
)
from lsr.data.layout import RUN_MINED_DIR as MINED_DIR
from lsr.report.markup import PNG_SIGNATURE

MINED_REPORT = mining_report_paths(MINED_DIR)[0]


class MissingPart(Exception):
    """A file a section needs is absent or unreadable; the message says which and why."""


def shown(path: Path, root: Path) -> str:
    """``path`` relative to the run directory when it is inside it (shorter to read), else as given."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_json(path: Path) -> dict[str, Any]:
    """A stage's JSON report (always an object at the top)."""
    if not path.is_file():
        raise MissingPart(f"{path} does not exist")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MissingPart(f"{path} could not be read as JSON ({err})") from None
    if not isinstance(value, dict):
        raise MissingPart(f"{path} is not a JSON object")
    return value


def load_jsonl(path: Path) -> list[dict]:
    """Every JSON object of a JSON Lines file; a broken line is an error naming its number, never skipped."""
    if not path.is_file():
        raise MissingPart(f"{path} does not exist")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise MissingPart(f"{path}, line {number}, is not JSON ({err})") from None
    return rows


def load_png(path: Path) -> bytes:
    if not path.is_file():
        raise MissingPart(f"{path} does not exist")
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise MissingPart(f"{path} is not a PNG image")
    return data


@dataclass(frozen=True)
class CorpusFigures:
    """The paper's Table-1 figures of one file of documents (whitespace words, as :mod:`lsr.data.stats` counts)."""

    name: str
    examples: int
    avg_document_words: float
    avg_summary_words: float


def corpus_figures(path: Path) -> CorpusFigures:
    """Table-1 figures of a JSON Lines file of documents, its columns matched as ``lsr`` reads them.

    Read by Arrow's JSON reader and counted with Arrow kernels, so a full training split takes seconds.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pajson

    from lsr.data.io import COLUMN_ALIASES
    from lsr.data.stats import word_counts

    if not path.is_file():
        raise MissingPart(f"{path} does not exist")
    if path.stat().st_size == 0:
        return CorpusFigures(path.stem, 0, 0.0, 0.0)
    try:
        table = pajson.read_json(path)
    except (pa.ArrowException, OSError) as err:
        raise MissingPart(f"{path} could not be read as JSON Lines ({err})") from None
    columns = {}
    for target in ("document", "summary"):
        name = next((a for a in COLUMN_ALIASES[target] if a in table.column_names), None)
        if name is None:
            raise MissingPart(f"{path} has no {target} column (accepted: {', '.join(COLUMN_ALIASES[target])})")
        columns[target] = pc.cast(table.column(name), pa.string())
    n = table.num_rows

    def average(texts: pa.ChunkedArray) -> float:
        return float(pc.sum(word_counts(texts)).as_py() or 0) / n if n else 0.0

    return CorpusFigures(path.stem, n, average(columns["document"]), average(columns["summary"]))


@dataclass
class TrainedModel:
    """A folder holding a training run; ``name`` is the evaluation's name for its model when it has one."""

    name: str
    folder: Path
    evaluated_as: list[str] = field(default_factory=list)


def _same_path(spec: str, target: Path, root: Path) -> bool:
    """Whether a path recorded by a stage (absolute, or relative to where it ran) names ``target``."""
    recorded = Path(spec)
    candidates = [recorded] if recorded.is_absolute() else [Path.cwd() / recorded, root / recorded]
    # A run folder that was moved or renamed: match the part below the run directory's own name.
    if root.name in recorded.parts:
        below = len(recorded.parts) - recorded.parts[::-1].index(root.name)  # just after its last occurrence
        candidates.append(root.joinpath(*recorded.parts[below:]))
    return any(c.exists() and c.resolve() == target.resolve() for c in candidates)


def trained_models(root: Path, evaluated: list[dict]) -> list[TrainedModel]:
    """Every folder directly under the run directory with a ``history.jsonl`` or ``train_report.json``.

    Each is named after the evaluated model whose checkpoint it holds (``--model NAME=RUN/x/model``), so the
    report uses the same names as the results table; a folder nobody evaluated keeps its own name.
    """
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not ((folder / HISTORY_FILE).is_file() or (folder / TRAIN_REPORT).is_file()):
            continue
        names = [
            m["name"]
            for m in evaluated
            if isinstance(m.get("path"), str)
            and any(_same_path(m["path"], t, root) for t in (folder, folder / MODEL_DIR))
        ]
        found.append(TrainedModel(names[0] if names else folder.name, folder, names))
    return found


def evaluated_models(results: dict) -> list[dict]:
    """The ``models`` rows of ``results.json`` that have a name, in the table's order."""
    models = results.get("models")
    if not isinstance(models, list):
        raise MissingPart("results.json has no list of models")
    return [m for m in models if isinstance(m, dict) and isinstance(m.get("name"), str)]


def load_predictions(eval_dir: Path, model: dict) -> list[dict]:
    """One model's generated summaries (id, document, summary, prediction, scores), sorted by id."""
    import pyarrow.parquet as pq

    path = eval_dir / model["name"] / PREDICTIONS_FILE
    if not path.is_file() and isinstance(model.get("predictions"), str) and Path(model["predictions"]).is_file():
        path = Path(model["predictions"])
    if not path.is_file():
        raise MissingPart(f"{eval_dir / model['name'] / PREDICTIONS_FILE} does not exist")
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several types for a broken file; the section names it
        raise MissingPart(f"{path} could not be read as Parquet ({err})") from None
    if rows and not {"id", "prediction"} <= rows[0].keys():
        raise MissingPart(f"{path} has no id/prediction columns")
    return sorted(rows, key=lambda r: str(r["id"]))


def load_rationales(mined_dir: Path, ids: list[str]) -> dict[str, dict]:
    """The mined rows of ``ids`` (those that were mined: held-out test documents normally are not)."""
    import pyarrow.dataset as pads

    if not mined_dir.is_dir():
        raise MissingPart(f"{mined_dir} does not exist")
    try:
        dataset = pads.dataset(mined_dir, format="parquet")
        rows = dataset.to_table(filter=pads.field("id").isin(ids)).to_pylist()
    except Exception as err:  # as above: an unreadable folder becomes a sentence in the report
        raise MissingPart(f"{mined_dir} could not be read as Parquet ({err})") from None
    return {str(r["id"]): r for r in rows}
