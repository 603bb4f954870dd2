"""Step 2 on Ray Data: score every mined row, split the rows into ``kept/`` and ``rejected/``, write a report.

The scoring itself is :mod:`lsr.selection.scoring` (pure); this module is the wiring around it: a
``map_batches`` over CPU workers that appends the SCORED columns, one materialisation so the partition and the
report read the same rows, and two filtered writes. Every input row lands in exactly one of ``kept/`` and ``rejected/``,
because both are filters on one boolean column that is never null.

Only training data may be filtered (docs/paper.md#split-guard): :func:`lsr.selection.split_guard.check_split` refuses an
input that looks like a test or validation split, unless forced.

``pyarrow`` and the lsr modules that need them are imported inside the functions that use them: the ``lsr`` command
imports this module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from lsr.core import schema as schemas
from lsr.core.config import SelectionPreset
from lsr.core.errors import InputError
from lsr.core.storage import filesystem, fresh_folder, join
from lsr.data.layout import KEPT, REJECTED
from lsr.selection.scoring import judge
from lsr.selection.split_guard import check_split

if TYPE_CHECKING:
    import ray.data

#: The mined columns a verdict reads; the rest of RATIONALES is carried through (and null-filled if absent).
REQUIRED_COLUMNS = ("id", "document", "summary", "aspects", "sentences", "triples", "sub_summaries",
                    "total_summary", "error")
_JUDGED_COLUMNS = tuple(c for c in REQUIRED_COLUMNS if c != "document")
_SCORE_FIELDS = ("rouge1", "rouge2", "rouge_x", "score", "kept", "reject_reason")


# ---------------------------------------------------------------------------------------------------------------
# The Ray Data pass


def _null_column(field: pa.Field, length: int) -> pa.Array:
    return pa.nulls(length, type=field.type)


def score_batch(batch: pa.Table, rule: SelectionPreset) -> pa.Table:
    """One batch of mined rows with the SCORED columns appended (and RATIONALES columns it lacks as nulls)."""
    rows = batch.select(list(_JUDGED_COLUMNS)).to_pylist()
    verdicts = [judge(row, rule) for row in rows]
    columns: dict[str, list] = {name: [] for name in _SCORE_FIELDS}
    for verdict in verdicts:
        figures = verdict.scored
        columns["rouge1"].append(figures.rouge1 if figures else None)
        columns["rouge2"].append(figures.rouge2 if figures else None)
        columns["rouge_x"].append(figures.rouge_x if figures else None)
        columns["score"].append(figures.score if figures else None)
        columns["kept"].append(verdict.kept)
        columns["reject_reason"].append(verdict.reject_reason)

    out = {}
    for field in schemas.SCORED:
        if field.name in columns:
            out[field.name] = pa.array(columns[field.name], type=field.type)
        elif field.name in batch.column_names:
            out[field.name] = batch.column(field.name)
        else:
            out[field.name] = _null_column(field, batch.num_rows)
    return pa.table(out).cast(schemas.SCORED)


def score_dataset(ds: ray.data.Dataset, rule: SelectionPreset, *, batch_size: int = 256) -> ray.data.Dataset:
    """The lazy scoring pass: a ``map_batches`` over CPU tasks, one core each (ROUGE is pure Python)."""
    return ds.map_batches(score_batch, fn_kwargs={"rule": rule}, batch_format="pyarrow", batch_size=batch_size,
                          num_cpus=1)


def _where_kept(batch: pa.Table, keep: bool) -> pa.Table:
    kept = batch.column("kept")
    return batch.filter(kept if keep else pc.invert(kept))


def partition(scored: ray.data.Dataset) -> tuple[ray.data.Dataset, ray.data.Dataset]:
    """``(kept, rejected)``: both filters on the same never-null column, so every row is in exactly one."""
    kept = scored.map_batches(_where_kept, fn_kwargs={"keep": True}, batch_format="pyarrow")
    rejected = scored.map_batches(_where_kept, fn_kwargs={"keep": False}, batch_format="pyarrow")
    return kept, rejected


def verdict_columns(batch: pa.Table) -> pa.Table:
    """The few per-row figures the report needs, so the driver pulls numbers, never documents."""
    from lsr.data.stats import word_counts

    return pa.table({
        "score": batch.column("score"),
        "kept": batch.column("kept"),
        "reject_reason": batch.column("reject_reason"),
        "document_words": word_counts(batch.column("document")),
        "summary_words": word_counts(batch.column("summary")),
    })


def _write_partition(ds: ray.data.Dataset, path: str, rows: int) -> None:
    """Write one side of the partition; an empty side still gets a schema-only file, so it can be read back."""
    from lsr.data.io import write_parquet

    if rows > 0:
        write_parquet(ds, path, schemas.SCORED)
        return
    import pyarrow.parquet as pq

    fs, inner = filesystem(path)
    fs.create_dir(inner, recursive=True)
    with fs.open_output_stream(f"{inner.rstrip('/')}/empty.parquet") as handle:
        pq.write_table(schemas.SCORED.empty_table(), handle)


@dataclass(frozen=True)
class SelectionResult:
    """Where the outputs went and the report's content (also written as ``report.json``)."""

    output: str
    kept: int
    rejected: int
    report: dict

    def summary_line(self) -> str:
        total = self.kept + self.rejected
        return (f"{self.output}: kept {self.kept} of {total} rows, rejected {self.rejected} "
                f"({json.dumps(self.report['rejected_by_reason'])})")


def run_selection(input_path: str, output: str, rule: SelectionPreset, *, dataset: str, force: bool = False,
                  overwrite: bool = False) -> SelectionResult:
    """Step 2 end to end: check the split, score on Ray Data, write ``kept/``, ``rejected/`` and the report."""
    from lsr.data.io import read_parquet_dir
    from lsr.data.unique_ids import check_unique_ids
    from lsr.selection.report import build_report, write_report

    split_flags = check_split(input_path, force=force)
    check_unique_ids(input_path)
    mined = read_parquet_dir(input_path, REQUIRED_COLUMNS)
    for part in (KEPT, REJECTED):  # Ray appends to a folder: an earlier run's rows would be read twice
        fresh_folder(output, part, overwrite)
    # One materialisation: the verdict pull and the two writes read these rows instead of scoring them again.
    scored = score_dataset(mined, rule).materialize()
    verdicts = scored.map_batches(verdict_columns, batch_format="pyarrow").to_pandas()
    if len(verdicts) == 0:
        raise InputError(f"{input_path}: the mining output holds no rows; nothing to select")
    report = build_report(verdicts, rule, dataset=dataset, input_path=input_path, output=output,
                          split_flags=split_flags)
    kept, rejected = partition(scored)
    _write_partition(kept, join(output, KEPT), report["kept"])
    _write_partition(rejected, join(output, REJECTED), report["rejected"])
    write_report(report, output)
    return SelectionResult(output=output, kept=report["kept"], rejected=report["rejected"], report=report)


__all__ = [
    "REQUIRED_COLUMNS",
    "SelectionResult",
    "partition",
    "run_selection",
    "score_batch",
    "score_dataset",
    "verdict_columns",
]
