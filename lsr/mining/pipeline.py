"""The mining job (paper Step 1) on Ray Data: read, skip what is done, prompt, call, parse, write, report.

Resuming: Ray Data's job-level checkpoint filters rows at the read and records them at the write of one
dataset; this job reads through :func:`lsr.io.read_documents` (which normalises and materialises) and chains
two processors, so it keeps its own equivalent, with the output directory as the checkpoint. Every finished
row is in a Parquet file of the output; a run lists those files, reads their ``id`` columns, and sends only
the other documents. Ray writes each file under a name unique to the run and a Parquet file is readable only
once its footer is written, so a file cut short by a kill fails to open: it is deleted (its rows are simply
redone) and never counted as done. Two runs must not write the same output at the same time.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lsr.errors import InputError
from lsr.mining.budget import TokenBudget
from lsr.mining.config import MineConfig
from lsr.mining.engines import CallResult, Engine, LlmEngine, build_call_processor
from lsr.mining.report import MiningReport, fill_from_output, write_report
from lsr.mining.rows import (
    DOCUMENT_TOO_LONG,
    MineSettings,
    after_rationale,
    after_rationale_stage,
    after_summaries_stage,
    final_row,
    offline_row,
    rationale_request,
    summaries_request,
)
from lsr.schema import RATIONALES
from lsr.storage import filesystem

if TYPE_CHECKING:
    import ray.data

logger = logging.getLogger(__name__)


def settings_of(config: MineConfig) -> MineSettings:
    """What every row needs to know about the run."""
    return MineSettings(
        dataset=config.dataset,
        engine=config.engine.kind,
        model=config.engine.model_name,
        rationale_max_tokens=config.mining.rationale_max_tokens,
        summaries_max_tokens=config.mining.summaries_max_tokens,
        temperature=config.mining.temperature,
    )


# ------------------------------------------------------------------------------------------- the output folder


def finished_files(path: str) -> tuple[list[str], list[str]]:
    """(readable Parquet files under ``path``, files that were cut short and are now deleted)."""
    fs, inner = filesystem(path)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.NotFound:
        return [], []
    if info.type != pafs.FileType.Directory:
        raise InputError(f"{path}: the output must be a directory, and this is a file")
    readable, broken = [], []
    for entry in fs.get_file_info(pafs.FileSelector(inner, recursive=True)):
        if entry.type != pafs.FileType.File or not entry.base_name.endswith(".parquet"):
            continue
        try:
            with fs.open_input_file(entry.path) as handle:
                pq.read_schema(handle)
            readable.append(entry.path)
        except (OSError, pa.ArrowException):
            fs.delete_file(entry.path)
            broken.append(entry.path)
    return readable, broken


def read_output_columns(path: str, files: list[str], columns: list[str]) -> pa.Table:
    fs, _ = filesystem(path)
    tables = [pq.read_table(f, columns=columns, filesystem=fs) for f in files]
    if not tables:
        return pa.table({c: pa.array([], RATIONALES.field(c).type) for c in columns})
    return pa.concat_tables(tables)


# ---------------------------------------------------------------------------------------- Ray Data operators


def _prepare_batch(batch: pa.Table, done_ids: pa.Array, budget: TokenBudget | None, dataset: str) -> pa.Table:
    """Drop finished ids; fit each document into the context (``prompt_document``, ``truncated``)."""
    batch = batch.filter(pc.invert(pc.is_in(batch.column("id"), value_set=done_ids)))
    documents = batch.column("document").to_pylist()
    summaries = batch.column("summary").to_pylist()
    fitted, truncated = [], []
    for document, summary in zip(documents, summaries, strict=True):
        text, cut = budget.fit(document, dataset, summary) if budget else (document, False)
        fitted.append(text)
        truncated.append(cut)
    return (
        batch.select(["id", "document", "summary"])
        .append_column("prompt_document", pa.array(fitted, pa.string()))
        .append_column("truncated", pa.array(truncated, pa.bool_()))
    )


def _too_long_error(row: dict[str, Any]) -> dict[str, Any]:
    if not row["prompt_document"]:
        row["a_error"] = f"{DOCUMENT_TOO_LONG}: the summary and the completions leave no room for the document"
    return row


def _to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=RATIONALES)


def _final_batch(batch: dict[str, Any], settings: MineSettings) -> pa.Table:
    rows = _batch_rows(batch)
    return _to_table([after_summaries_stage(row, settings) for row in rows])


def _batch_rows(batch) -> list[dict[str, Any]]:
    if isinstance(batch, pa.Table):
        return batch.to_pylist()
    import pandas as pd

    if isinstance(batch, pd.DataFrame):
        return batch.to_dict("records")
    keys = list(batch)
    return [dict(zip(keys, values, strict=True)) for values in zip(*(batch[k] for k in keys), strict=True)]


def _local_batch(batch: pa.Table, engine: Engine, settings: MineSettings) -> pa.Table:
    """Both calls answered on this CPU worker by a local engine (the oracle)."""
    out = []
    for row in batch.to_pylist():
        row = _too_long_error(row)
        if row.get("a_error"):
            out.append(final_row(after_rationale(row, CallResult(None, None, None, None), settings), None, settings))
            continue
        raw_a, raw_b = engine.answer(row["prompt_document"], row["summary"], settings.dataset)
        out.append(offline_row(row, raw_a, lambda raw_b=raw_b: raw_b, settings))
    return _to_table(out)


def _llm_pipeline(ds: ray.data.Dataset, engine: LlmEngine, settings: MineSettings) -> ray.data.Dataset:
    """Call A -> parse -> call B -> parse, as two chained ``ray.data.llm`` processors."""
    call_a = build_call_processor(
        engine,
        make_request=lambda row: None if row.get("a_error") else rationale_request(row, settings),
        read_reply=lambda row, result: after_rationale(row, result, settings),
    )
    call_b = build_call_processor(
        engine,
        make_request=lambda row: summaries_request(row, settings),
        read_reply=lambda row, result: final_row(row, result, settings),
    )
    ds = ds.map(_too_long_error)
    ds = call_a(ds).map(after_rationale_stage, fn_kwargs={"settings": settings})
    return call_b(ds).map_batches(_final_batch, fn_kwargs={"settings": settings}, batch_format="pandas")


# ---------------------------------------------------------------------------------------------------- the job


def run_mining(config: MineConfig) -> MiningReport:
    """Mine every document of ``config.input`` not yet in ``config.output``, then report on the whole output."""
    from lsr.io import read_documents, write_parquet

    started = time.monotonic()
    ds, input_report = read_documents(config.input)
    if config.limit is not None:
        ds = ds.limit(config.limit).materialize()
    input_ids = _column(ds, "id")

    files, broken = finished_files(config.output)
    done = read_output_columns(config.output, files, ["id"]).column("id")
    done_set = set(done.to_pylist())
    todo = sum(1 for i in input_ids if i not in done_set)
    settings = settings_of(config)
    report = MiningReport(
        input_path=config.input,
        output_path=config.output,
        dataset=config.dataset,
        engine=settings.engine,
        model=settings.model,
        removed_at_read=input_report.removed,
        resumed_from_earlier_runs=len(input_ids) - todo,
        processed_this_run=todo,
        broken_files_removed=broken,
    )
    if broken:
        logger.warning("removed %d output file(s) cut short by an earlier run: %s", len(broken), ", ".join(broken))
    if todo:
        logger.info("mining %d document(s); %d already in %s", todo, len(input_ids) - todo, config.output)
        prepared = ds.repartition(target_num_rows_per_block=config.rows_per_file).map_batches(
            _prepare_batch,
            fn_kwargs={
                "done_ids": pa.array(sorted(done_set), pa.string()),
                "budget": config.engine.budget(config.mining),
                "dataset": config.dataset,
            },
            batch_format="pyarrow",
        )
        if config.engine.runs_locally:
            mined = prepared.map_batches(
                _local_batch, fn_kwargs={"engine": config.engine, "settings": settings}, batch_format="pyarrow"
            )
        else:
            mined = _llm_pipeline(prepared, config.engine, settings)
        write_parquet(mined, config.output, RATIONALES)

    files, _ = finished_files(config.output)
    table = read_output_columns(
        config.output, files, ["id", "error", "truncated", "problems", "prompt_tokens", "completion_tokens"]
    )
    fill_from_output(report, table, input_ids)
    report.seconds = time.monotonic() - started
    fs, inner = filesystem(config.output)
    write_report(report, fs, inner.rstrip("/"))
    return report


def _column(ds: ray.data.Dataset, name: str) -> list[str]:
    return [
        v
        for batch in ds.select_columns([name]).iter_batches(batch_format="pyarrow")
        for v in batch.column(name).to_pylist()
    ]
