"""The mining job (paper Step 1) on Ray Data: read, skip what is done, prompt, call, parse, write, report.

Streaming: the corpus is never materialised. :func:`lsr.data.io.index_documents` checks every row in one streaming
pass on the driver before Ray starts and keeps only the ids (duplicates refused and removed rows counted before
any request is sent); the ids decide what this run mines (``--limit``, resume), and
:func:`lsr.data.io.stream_documents` then reads the documents again, block by block, on Ray's workers, into the request
stage as it pulls them. The driver holds the ids (Arrow buffers) and at
most ``rows_per_file`` finished rows; the object store holds the blocks in flight, whatever the corpus's size.

Resuming: the run keeps its own output folder, owned through a manifest and a lock (:mod:`lsr.mining.output`).
A run reads the ``id`` columns of the files the manifest lists and streams only the other documents; rows that
failed for a transient reason are taken out of their files first and mined again (:mod:`lsr.mining.failures`).
Ray Data's job-level checkpointing (``DataContext.checkpoint_config``, Ray 2.60) cannot replace this, for three
reasons read in ``ray/data/checkpoint`` and ``ray/data/_internal/planner``: (1) it filters finished rows with an
actor placed directly after the ``Read`` operator, on the id column of the raw file, while our ``id`` exists only
after normalising (an aliased column such as ``doc_id``/``guid``, or a content hash when the input has none);
(2) it records every written row as finished in its own checkpoint files and offers no way to take a row back
short of rewriting Ray's files by hand, so a row that failed for a transient reason (written with its error, so
that no row is dropped in silence) would never be retried; (3) it is planned only when the dataset ends in a ``Write``
operator, so the driver would no longer collect the rows: Ray names the files per block, outside the manifest that
makes the output folder ours, and nothing flushes the finished rows on SIGINT/SIGTERM.

Durable progress: the driver pulls finished rows from the streaming pipeline as they come and writes a file
every ``rows_per_file`` rows, so a kill loses at most that many rows the driver holds, plus rows not yet out of
Ray's operators: documents in flight and the finished block-mates of a document still waiting on a request (a
stage task is one block of ``max_in_flight`` documents and an actor runs two at once, so that it keeps its budget
full; each document's two calls run back to back in one actor, :mod:`lsr.mining.document_stage`).
The pipeline is never serialised: the driver only collects; the stage actors keep their own in-flight budgets
full. On SIGINT/SIGTERM the rows already received are written before the run stops.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lsr.core.schema import RATIONALES
from lsr.data.io import conform, index_documents, stream_documents
from lsr.mining.budget import TokenBudget
from lsr.mining.cluster_timeline import ClusterTimeline
from lsr.mining.config import MineConfig
from lsr.mining.document_stage import mine_documents, too_long_error
from lsr.mining.engines import CallResult, Engine
from lsr.mining.failures import failure_kind, should_retry
from lsr.mining.output import OpenReport, OwnedOutput
from lsr.mining.report import REPORT_COLUMNS, MiningReport, fill_from_output, write_report
from lsr.mining.rows import MineSettings, after_rationale, final_row, offline_row
from lsr.mining.tally import TallyCounter, end_tally, read_tally, start_tally

if TYPE_CHECKING:
    import ray.data

    from lsr.data.io import DocumentIndex

logger = logging.getLogger(__name__)

#: Columns that may hold a server's text, masked for secrets before they are written.
_TEXT_COLUMNS = ("error", "raw_rationale", "raw_summaries")


def settings_of(config: MineConfig) -> MineSettings:
    """What every row needs to know about the run."""
    return MineSettings(
        dataset=config.dataset,
        engine=config.engine.kind,
        model=config.engine.model_name,
        rationale_max_tokens=config.mining.rationale_max_tokens,
        summaries_max_tokens=config.mining.summaries_max_tokens,
        temperature=config.mining.temperature,
        structured=config.mining.structured_output,
        json_chars_per_token=config.mining.json_chars_per_token,
    )


class Interrupted(Exception):
    """The run was stopped by a signal after writing every row it had received."""

    def __init__(self, signal_name: str, saved_rows: int, output: str):
        super().__init__(
            f"stopped by {signal_name}: {saved_rows} row(s) of this run saved in {output}; run the same command "
            "again to resume (finished rows are not mined again)"
        )
        self.signal_name = signal_name
        self.saved_rows = saved_rows


# ------------------------------------------------------------------------------------------- the output folder


def read_output_columns(fs: pafs.FileSystem, files: list[str], columns: list[str]) -> pa.Table:
    """``columns`` of the output files; a column a file of an older version lacks reads as nulls."""
    tables = []
    for path in files:
        with fs.open_input_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            present = [c for c in columns if c in parquet.schema_arrow.names]
            table = parquet.read(columns=present)
        for name in columns:
            if name not in present:
                field = RATIONALES.field(name)
                table = table.append_column(field, pa.nulls(table.num_rows, field.type))
        tables.append(table.select(columns))
    if not tables:
        return pa.table({c: pa.array([], RATIONALES.field(c).type) for c in columns})
    return pa.concat_tables(tables)


def take_out_rows_to_retry(output: OwnedOutput, *, transient: bool, unparsable: bool) -> Counter:
    """Remove failed rows that will be mined again from their files (rewriting each file once); count by kind."""
    retried: Counter = Counter()
    for file in output.files():
        errors = pq.read_table(file, columns=["error"], filesystem=output.fs).column("error").to_pylist()
        redo = [should_retry(e, transient=transient, unparsable=unparsable) for e in errors]
        if not any(redo):
            continue
        retried.update(failure_kind(e) for e, r in zip(errors, redo, strict=True) if r)
        table = pq.read_table(file, filesystem=output.fs)
        output.replace(file, table.filter(pa.array([not r for r in redo])))
    return retried


def mask_secrets(table: pa.Table, secrets: tuple[str, ...]) -> pa.Table:
    """Every secret masked in the text columns a server's reply can reach (the last guard before storage)."""
    for name in _TEXT_COLUMNS:
        if not secrets or name not in table.column_names:
            continue
        column = table.column(name)
        for secret in secrets:
            column = pc.replace_substring(column, pattern=secret, replacement="***")
        table = table.set_column(table.column_names.index(name), name, column)
    return table


class RowWriter:
    """Collects finished rows on the driver and writes a file every ``rows_per_file`` rows; the ``timeline`` says
    when each file was written (seconds since ``started``, rows and completion tokens saved so far)."""

    def __init__(self, output: OwnedOutput, rows_per_file: int, secrets: tuple[str, ...], started: float = 0.0):
        self.output = output
        self.rows_per_file = rows_per_file
        self.secrets = secrets
        self.started = started or time.monotonic()
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self.saved_rows = 0
        self.saved_completion_tokens = 0
        self.saved_requests = 0  # what the saved rows' ``requests`` column says they cost
        self.files: list[str] = []
        self.timeline: list[dict[str, float]] = []

    def add(self, batch: pa.Table) -> None:

        if not batch.num_rows:
            return
        self._buffer.append(mask_secrets(conform(batch, RATIONALES), self.secrets))
        self._buffered += batch.num_rows
        while self._buffered >= self.rows_per_file:
            table = pa.concat_tables(self._buffer)
            self._write(table.slice(0, self.rows_per_file))
            rest = table.slice(self.rows_per_file)
            self._buffer, self._buffered = ([rest] if rest.num_rows else []), rest.num_rows

    def flush(self) -> None:
        if self._buffered:
            self._write(pa.concat_tables(self._buffer))
        self._buffer, self._buffered = [], 0

    def _write(self, table: pa.Table) -> None:
        self.files.append(self.output.add(table.combine_chunks()))
        self.saved_rows += table.num_rows
        self.saved_completion_tokens += int(pc.sum(table.column("completion_tokens")).as_py() or 0)
        self.saved_requests += int(pc.sum(table.column("requests")).as_py() or 0)
        self.timeline.append({"seconds": round(time.monotonic() - self.started, 3), "rows": self.saved_rows,
                              "completion_tokens": self.saved_completion_tokens})


# ---------------------------------------------------------------------------------------- Ray Data operators


def _prepare_batch(batch: pa.Table, budget: TokenBudget | None, dataset: str) -> pa.Table:
    """Fit each document into the context (``prompt_document``, ``truncated``)."""
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


def _to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=RATIONALES)


def _local_batch(batch: pa.Table, engine: Engine, settings: MineSettings) -> pa.Table:
    """Both calls answered on this CPU worker by a local engine (the oracle)."""
    out = []
    for row in batch.to_pylist():
        row = too_long_error(row)
        if row.get("a_error"):
            out.append(final_row(after_rationale(row, CallResult(None, None, None, None), settings), None, settings))
            continue
        raw_a, raw_b = engine.answer(row["prompt_document"], row["summary"], settings.dataset)
        out.append(offline_row(row, raw_a, lambda raw_b=raw_b: raw_b, settings))
    return _to_table(out)


# ---------------------------------------------------------------------------------------------------- the job


class Prepared(NamedTuple):
    """What :func:`prepare` checked and holds before Ray starts."""

    output: OwnedOutput
    opened: OpenReport
    index: DocumentIndex


def prepare(config: MineConfig) -> Prepared:
    """What is checked before Ray starts: every row of the input (its ids kept, duplicates refused, removed rows
    counted; no document held), then the output folder (locked)."""

    started = time.monotonic()
    index = index_documents(config.input)
    logger.info("indexed %d document(s) of %s in %.1f s", len(index.ids), config.input, time.monotonic() - started)
    output, opened = OwnedOutput.open(config, start_over=config.start_over)
    return Prepared(output, opened, index)


def run_mining(config: MineConfig, prepared: Prepared | None = None) -> MiningReport:
    """Mine every document of ``config.input`` not yet in ``config.output``, then report on the whole output."""
    prepared = prepared or prepare(config)
    try:
        return _mine(config, prepared)
    finally:
        prepared.output.release()


def _mine(config: MineConfig, prepared: Prepared) -> MiningReport:
    started = time.monotonic()
    output, opened, index = prepared
    todo = _find_todo(config, output, index)
    settings = settings_of(config)
    report = _start_report(config, settings, prepared, todo)
    if opened.broken:
        logger.warning("removed %d unreadable output file(s): %s", len(opened.broken), ", ".join(opened.broken))
    writer = RowWriter(output, config.rows_per_file, config.engine.secrets(), started)
    if todo.count:
        logger.info("mining %d document(s); %d already in %s", todo.count, todo.already_done, config.output)
        tally = None if config.engine.runs_locally else start_tally()  # what a dead actor's rows cannot tell
        try:
            with ClusterTimeline(started) as cluster:
                _write_mined_rows(_mining_stream(config, index, todo, settings, tally), writer, config.output)
        except BaseException:
            if tally is not None:
                end_tally(tally)
            raise
        report.cluster = cluster.samples
        if tally is not None:
            count_rework(report, read_tally(tally), writer)
    _finish_report(report, output, todo.input_ids, writer, started, config.output)
    return report


class _Todo(NamedTuple):
    """This run's share of the input: the ids it considers, which of them the output holds, how many are left."""

    input_ids: pa.Array
    done: pa.Array
    count: int
    retried: Counter

    @property
    def already_done(self) -> int:
        return len(self.input_ids) - self.count


def _find_todo(config: MineConfig, output: OwnedOutput, index: DocumentIndex) -> _Todo:
    """The input's ids (cut to ``--limit``) and those already in the output. The failed rows to retry are taken out
    of the output first, so that their documents count as not done and are mined again."""
    input_ids = index.ids if config.limit is None else index.ids.slice(0, config.limit)
    retried = take_out_rows_to_retry(output, transient=config.retry_failed, unparsable=config.retry_unparsable)
    output_ids = read_output_columns(output.fs, output.files(), ["id"]).column("id").combine_chunks()
    done = pc.is_in(input_ids, value_set=output_ids)
    todo = len(input_ids) - int(pc.sum(done).as_py() or 0)
    return _Todo(input_ids, done, todo, retried)


def _start_report(config: MineConfig, settings: MineSettings, prepared: Prepared, todo: _Todo) -> MiningReport:
    """The report's account of this run, known before any request: what was read, resumed, retried, removed."""
    return MiningReport(
        input_path=config.input,
        output_path=config.output,
        dataset=config.dataset,
        engine=settings.engine,
        model=settings.model,
        removed_at_read=prepared.index.report.removed,
        resumed_from_earlier_runs=todo.already_done,
        processed_this_run=todo.count,
        retried_this_run=dict(todo.retried),
        broken_files_removed=prepared.opened.broken,
    )


def _mining_stream(config: MineConfig, index: DocumentIndex, todo: _Todo, settings: MineSettings,
                   tally: TallyCounter | None = None) -> ray.data.Dataset:
    """This run's documents, fitted into the context and mined: the lazy Ray Data pipeline the driver pulls from.

    An LLM engine's stage takes one block of its in-flight budget per task (strict: Ray's streaming repartition
    would otherwise leave a whole input file in one block, and a task's rows leave the actor only together); the
    oracle answers locally, in blocks of rows_per_file. Prompts are fitted before the repartition, in the read
    task: a repartition task hands its blocks out one by one (about 0.1 s each here, 3.2 s for 8,192 documents in
    one file) and a task stage placed after it waits for all of them, while the mining actors, which hold their
    resources already, take each block as it comes (measured: the first request 6.5 s after the start this way,
    9.9 s with the fitting after the repartition).
    """
    llm = not config.engine.runs_locally
    block_rows = config.engine.rows_in_flight if llm else config.rows_per_file
    ds = _documents_to_mine(index, todo.input_ids, todo.done, limited=config.limit is not None)
    prepared = ds.map_batches(
        _prepare_batch,
        fn_kwargs={
            "budget": config.engine.budget(config.mining),
            "dataset": config.dataset,
        },
        batch_format="pyarrow",
    ).repartition(target_num_rows_per_block=block_rows, strict=llm)
    if config.engine.runs_locally:
        return prepared.map_batches(
            _local_batch, fn_kwargs={"engine": config.engine, "settings": settings}, batch_format="pyarrow"
        )
    return mine_documents(prepared, config.engine, settings, tally)


def _write_mined_rows(mined: ray.data.Dataset, writer: RowWriter, output_path: str) -> None:
    """Pull the finished rows as they come and write them; on SIGINT/SIGTERM the rows received are written before
    the run stops with :class:`Interrupted`, so that a rerun resumes after them."""
    try:
        for batch in mined.iter_batches(batch_size=None, batch_format="pyarrow"):
            writer.add(batch)
    except KeyboardInterrupt as stop:
        writer.flush()
        raise Interrupted(getattr(stop, "signal_name", "SIGINT"), writer.saved_rows, output_path) from None
    writer.flush()


def _finish_report(report: MiningReport, output: OwnedOutput, input_ids: pa.Array, writer: RowWriter,
                   started: float, output_path: str) -> None:
    """Complete the report from the whole output folder (earlier runs' rows included) and write it there."""
    table = read_output_columns(output.fs, output.files(), list(REPORT_COLUMNS))
    fill_from_output(report, table, input_ids)
    report.timeline = writer.timeline
    report.seconds = time.monotonic() - started
    write_report(report, output_path)


def count_rework(report: MiningReport, totals: tuple[int, int], writer: RowWriter) -> None:
    """This run's requests as the tally counted them, and what no saved row accounts for: the requests and the
    documents of rows lost with an actor or a node that died (mined again by its restarted actor)."""
    requests, documents = totals
    report.requests_sent_this_run = requests
    report.requests_lost = requests - writer.saved_requests
    report.rows_mined_again = documents - writer.saved_rows
    if report.requests_lost or report.rows_mined_again:
        logger.warning("%d request(s) were lost with failed actors or nodes; %d row(s) were mined again",
                       report.requests_lost, report.rows_mined_again)


def _documents_to_mine(index: DocumentIndex, input_ids: pa.Array, done: pa.Array, *, limited: bool) -> ray.data.Dataset:
    """The stream of this run's documents: the input's rows kept to the ids not done, or (the smaller id set to
    ship to every reading task, when nothing limits the input) cleared of the ids done."""

    todo_ids = input_ids.filter(pc.invert(done))
    done_ids = input_ids.filter(done)
    if not limited and len(done_ids) < len(todo_ids):
        return stream_documents(index, done_ids if len(done_ids) else None, exclude=True)
    return stream_documents(index, todo_ids)
