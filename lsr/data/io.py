"""Reading documents into a Ray Dataset and writing stage outputs as Parquet with an explicit schema.

Every stage starts from :func:`read_documents` (raw corpora in their common shapes) or :func:`read_parquet_dir`
(a previous stage's output), and ends with :func:`write_parquet`. Problems with the input are found up front,
file by file, so the user gets one line naming the file and what is wrong with it rather than a traceback from
inside a Ray task.

Documents stream: nothing here materialises a corpus. The checks that need every row (unreadable rows, empty texts,
duplicate ids) run as one streaming pass that keeps only the ids (:func:`index_documents`); the documents are
then read again, block by block, as the stage consumes them (:func:`stream_documents`), so the driver's and the
object store's memory do not grow with the corpus (``bench/bench_mine_memory.py`` measures both).

``ray`` and the lsr modules that need them are imported inside the functions that use them, so that importing this
module for one of its functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.json as pajson
import pyarrow.parquet as pq

from lsr.core.errors import InputError
from lsr.core.ray_utils import init_ray
from lsr.core.storage import filesystem, ray_filesystem

if TYPE_CHECKING:
    import ray.data

#: File extensions we read, and the reader each one needs.
FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}

#: Source column names accepted for each normalised column, in order of preference:
#: CNN/DailyMail ships ``article``/``highlights``, XSum ``document``/``summary``.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "doc_id", "guid"),
    "document": ("document", "article", "text"),
    "summary": ("summary", "highlights", "abstract"),
}

#: Why a row was removed before mining (the paper's preprocessing drops empty documents and summaries).
DROP_EMPTY_DOCUMENT = "empty_document"
DROP_EMPTY_SUMMARY = "empty_summary"
_DROP_COLUMN = "__drop_reason"


@dataclass
class InputReport:
    """What reading an input did: which files, how many rows, and how many were removed and why."""

    path: str
    files: list[str]
    rows_read: int = 0
    rows_kept: int = 0
    removed: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary_line(self) -> str:
        removed = ", ".join(f"{n} {why}" for why, n in sorted(self.removed.items())) or "none"
        return (
            f"{self.path}: {self.rows_read} rows read from {len(self.files)} file(s), {self.rows_kept} kept; "
            f"removed: {removed}"
        )


@dataclass(frozen=True)
class _ColumnMap:
    """Which source column feeds each normalised column (``id`` may be absent: then a content hash)."""

    id: str | None
    document: str
    summary: str

    @property
    def source_columns(self) -> list[str]:
        """The source columns normalising reads, in id, document, summary order."""
        return [name for name in (self.id, self.document, self.summary) if name is not None]


# ---------------------------------------------------------------------------------------------------------------
# Finding and checking files


def _format_of(file: str) -> str:
    name = file.lower()
    for ext, fmt in FORMATS.items():
        if name.endswith(ext):
            return fmt
    ext = "." + name.rsplit(".", 1)[1] if "." in name.rsplit("/", 1)[-1] else "(no extension)"
    raise InputError(f"{file}: unknown format {ext}; expected one of {', '.join(FORMATS)}")


def resolve_files(path: str) -> tuple[pafs.FileSystem, list[str], str]:
    """The files behind ``path`` (a file or a folder of them), their filesystem, and their common format."""
    fs, inner = filesystem(path)
    try:
        info = fs.get_file_info(inner)
    except OSError as err:
        raise InputError(f"{path}: cannot access ({err})") from None
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"{path}: no such file or directory")
    if info.type == pafs.FileType.File:
        files = [inner]
    else:
        entries = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
        files = sorted(
            e.path
            for e in entries
            if e.type == pafs.FileType.File and not e.base_name.startswith((".", "_"))
        )
        if not files:
            raise InputError(f"{path}: the directory holds no data files")
    formats = {_format_of(f) for f in files}
    if len(formats) > 1:
        raise InputError(f"{path}: mixes formats ({', '.join(sorted(formats))}); keep one format per input")
    if not isinstance(fs, pafs.LocalFileSystem):
        # Ray's readers want URIs back for remote filesystems' paths.
        scheme = path.split("://", 1)[0]
        files = [f"{scheme}://{f}" for f in files]
    return fs, files, formats.pop()


def _strip_scheme(file: str) -> str:
    return file.split("://", 1)[1] if "://" in file else file


def _columns_of(fs: pafs.FileSystem, file: str, fmt: str) -> list[str]:
    """The column names of one file, read cheaply (a Parquet footer, a CSV header, a first JSON line)."""
    inner = _strip_scheme(file)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            with fs.open_input_file(inner) as handle:
                if handle.size() == 0:
                    raise InputError(f"{file}: the file is empty")
                return list(pq.read_schema(handle).names)
        with fs.open_input_stream(inner) as handle:
            head = handle.read(1 << 20)
    except InputError:
        raise
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"{file}: unreadable {fmt} file ({err})") from None
    text = head.decode("utf-8", errors="replace")
    if not text.strip():
        raise InputError(f"{file}: the file is empty")
    if fmt == "csv":
        import csv

        header = next(csv.reader(io.StringIO(text)))
        return [h.strip() for h in header]
    first = text.lstrip()
    if first.startswith("["):
        raise InputError(f"{file}: a JSON array; write one JSON object per line (JSON Lines) instead")
    line = first.split("\n", 1)[0]
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(f"{file}: line 1 is not valid JSON ({err.msg})") from None
    if not isinstance(record, dict):
        raise InputError(f"{file}: line 1 is not a JSON object")
    return list(record)


def input_columns(path: str) -> list[str]:
    """Every column name found in the files behind ``path`` (first seen first), read without Ray."""
    fs, files, fmt = resolve_files(path)
    names: dict[str, None] = {}
    for file in files:
        names.update(dict.fromkeys(_columns_of(fs, file, fmt)))
    return list(names)


def _column_map(columns: Sequence[str], file: str) -> _ColumnMap:
    """Match a file's columns against :data:`COLUMN_ALIASES`, or say exactly what is missing."""
    found: dict[str, str | None] = {}
    for target, aliases in COLUMN_ALIASES.items():
        found[target] = next((a for a in aliases if a in columns), None)
    for target in ("document", "summary"):
        if found[target] is None:
            raise InputError(
                f"{file}: missing column {target!r} (accepted names: {', '.join(COLUMN_ALIASES[target])}; "
                f"found: {', '.join(columns) or 'none'})"
            )
    return _ColumnMap(id=found["id"], document=found["document"], summary=found["summary"])


# ---------------------------------------------------------------------------------------------------------------
# Normalising rows


def content_id(document: str, summary: str) -> str:
    """A stable id for a row that has none: the same texts give the same id on any machine, in any run."""
    digest = hashlib.sha256()
    digest.update(document.encode("utf-8"))
    digest.update(b"\x1f")
    digest.update(summary.encode("utf-8"))
    return digest.hexdigest()[:20]


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    text = pc.cast(column, pa.string()) if not pa.types.is_string(column.type) else column
    return pc.fill_null(text, "")


def _text_column(batch: pa.Table, name: str) -> pa.Array:
    """A text column as strings; numbers or nested values are an input error, never silently turned into text."""
    column = batch.column(name)
    kind = column.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
        raise InputError(f"column {name!r} holds {kind} values, not text; the documents and summaries must be strings")
    return _as_text(column)


def normalise_batch(batch: pa.Table, columns: _ColumnMap) -> pa.Table:
    """Rename a source batch to ``id, document, summary`` and mark rows with an empty text for removal."""
    document = _text_column(batch, columns.document)
    summary = _text_column(batch, columns.summary)
    if columns.id is not None:
        ids = _as_text(batch.column(columns.id))
        triples = zip(ids.to_pylist(), document.to_pylist(), summary.to_pylist(), strict=True)
        ids = pa.array([i if i else content_id(d, s) for i, d, s in triples], pa.string())
    else:
        pairs = zip(document.to_pylist(), summary.to_pylist(), strict=True)
        ids = pa.array([content_id(d, s) for d, s in pairs], pa.string())
    empty_doc = pc.equal(pc.utf8_trim_whitespace(document), "")
    empty_sum = pc.equal(pc.utf8_trim_whitespace(summary), "")
    reason = pc.if_else(empty_doc, DROP_EMPTY_DOCUMENT, pc.if_else(empty_sum, DROP_EMPTY_SUMMARY, ""))
    return pa.table({"id": ids, "document": document, "summary": summary, _DROP_COLUMN: reason})


def _keep_valid(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.equal(batch.column(_DROP_COLUMN), "")).drop_columns([_DROP_COLUMN])


def _read_raw(files: list[str], fmt: str, fs: pafs.FileSystem, columns: _ColumnMap) -> ray.data.Dataset:
    import ray.data

    remote = None if isinstance(fs, pafs.LocalFileSystem) else fs
    if fmt == "parquet":  # only the columns normalising reads (Ray pushes the projection into the reader)
        return ray.data.read_parquet(files, filesystem=remote).select_columns(columns.source_columns)
    if fmt == "csv":
        return ray.data.read_csv(files, filesystem=remote)
    from lsr.data.json_lines_source import JsonLinesStream  # streams; Ray's read_json parses each file whole

    source = JsonLinesStream(files, filesystem=remote, file_extensions=None)
    return ray.data.read_datasource(source, override_num_blocks=len(files))  # no split: it would collect a file


def check_documents(path: str) -> tuple[pafs.FileSystem, list[str], str, _ColumnMap]:
    """The cheap checks of :func:`read_documents`, without Ray: the files exist, share a format and name the
    columns we need. A stage calls it before starting Ray, so a wrong path is one line within a second."""
    fs, files, fmt = resolve_files(path)
    maps = {file: _column_map(_columns_of(fs, file, fmt), file) for file in files}
    distinct = set(maps.values())
    if len(distinct) > 1:
        raise InputError(f"{path}: the files name their columns differently; use one schema for all files")
    columns = distinct.pop()
    if fmt == "parquet":  # the types are in the footers: refuse non-text columns before Ray starts
        import pyarrow.parquet as pq

        for file in files:
            with fs.open_input_file(_strip_scheme(file)) as handle:
                schema = pq.read_schema(handle)
            for name in (columns.document, columns.summary):
                kind = schema.field(name).type
                if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
                    raise InputError(
                        f"{file}: column {name!r} holds {kind} values, not text; "
                        "the documents and summaries must be strings"
                    )
    return fs, files, fmt, columns


def _raise_first_bad_json_line(fs: pafs.FileSystem, files: list[str]) -> None:
    """Name the file and the 1-based line of the first malformed JSON line (Arrow's own message names a block)."""
    for file in files:
        with fs.open_input_stream(_strip_scheme(file)) as handle:
            lines = io.TextIOWrapper(io.BufferedReader(_RawStream(handle)), encoding="utf-8", errors="replace")
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise InputError(f"{file}: line {number} is not valid JSON ({err.msg})") from None
                if not isinstance(record, dict):
                    raise InputError(f"{file}: line {number} is not a JSON object")


class _RawStream(io.RawIOBase):
    """A pyarrow input stream as a Python raw stream, to read a large file line by line."""

    def __init__(self, handle):
        self._handle = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass(frozen=True)
class DocumentIndex:
    """All the driver keeps of a corpus: the kept rows' ids in input order, and the read report.

    Built by :func:`index_documents`, one streaming pass on the driver that normalises every row block by block and
    keeps only each row's ``id`` and whether it was removed. That is what must be known before the
    first document is mined (duplicate ids refused, removed rows counted, what ``--limit`` and a resume leave to
    do) and it is all the driver holds: some tens of bytes per document in Arrow buffers, never the texts, which
    :func:`stream_documents` reads again as a stream. The price is a second read of the input files.

    The id column alone cannot stand in for this pass: a row's id is derived while normalising (an aliased column,
    or a content hash of the texts when the id is absent or empty), and the duplicate check counts only the rows
    that survive the removal of empty documents and summaries, which needs the texts.
    """

    path: str
    fs: pafs.FileSystem
    files: list[str]
    fmt: str
    columns: _ColumnMap
    report: InputReport
    ids: pa.Array


def _index_batch(batch: pa.Table, columns: _ColumnMap) -> pa.Table:
    """A source batch reduced to each row's normalised ``id`` and removal reason (the texts stay on the worker)."""
    return normalise_batch(batch, columns).select(["id", _DROP_COLUMN])


def _valid_batch(batch: pa.Table, columns: _ColumnMap, ids: pa.Array | None, exclude: bool) -> pa.Table:
    """A source batch normalised, without its removed rows, and kept to (or cleared of) the given ids."""
    valid = _keep_valid(normalise_batch(batch, columns))
    if ids is None:
        return valid
    found = pc.is_in(valid.column("id"), value_set=ids)
    return valid.filter(pc.invert(found) if exclude else found)


def _read_error(err: Exception, path: str, fmt: str, fs: pafs.FileSystem, files: list[str]) -> InputError:
    """A reader's error (Arrow's, or Ray's wrapping of it) reduced to the file-level message the user can act on."""
    if fmt == "json":
        _raise_first_bad_json_line(fs, files)
    return InputError(f"{path}: could not read {fmt} data ({_root_message(err)})")


def raw_tables(fs: pafs.FileSystem, files: list[str], fmt: str, columns: _ColumnMap) -> Iterator[pa.Table]:
    """The input's rows as Arrow tables of a few MB each, read in this process (no Ray) with the Arrow readers the
    Ray read of :func:`stream_documents` uses (Ray's ``read_csv``/``read_parquet``, and
    :class:`lsr.data.json_lines_source.JsonLinesStream`), file by file as Ray reads them (so the ids come out as
    :func:`stream_documents` will see them), streamed block by block: memory stays at one block whatever the size
    of a file or of the corpus. Reading errors are Arrow's (``OSError``, ``pyarrow.ArrowException``)."""

    for file in files:
        inner = _strip_scheme(file)
        if fmt == "parquet":
            with fs.open_input_file(inner) as handle:
                for batch in pq.ParquetFile(handle).iter_batches(columns=columns.source_columns):
                    yield pa.Table.from_batches([batch])
            continue
        with fs.open_input_stream(inner) as handle:
            reader = pacsv.open_csv(handle) if fmt == "csv" else pajson.open_json(handle)
            for batch in reader:
                yield pa.Table.from_batches([batch])


#: The column :func:`marked_rows` adds: why a row is left out ("" for a usable row).
DROP_REASON = _DROP_COLUMN


def marked_rows(path: str) -> tuple[int, Iterator[pa.Table]]:
    """``path``'s file count, and its rows block by block, normalised (``document``, ``summary``) and marked with
    :data:`DROP_REASON`, on the driver and without Ray (what ``lsr plan`` samples). The checks and errors are
    :func:`check_documents`'s; a file that cannot be read is one :class:`InputError` naming it."""
    fs, files, fmt, columns = check_documents(path)

    def tables() -> Iterator[pa.Table]:
        try:
            for table in raw_tables(fs, files, fmt, columns):
                yield normalise_batch(table, columns)
        except (OSError, pa.ArrowException) as err:
            raise _read_error(err, path, fmt, fs, files) from None

    return len(files), tables()


def index_documents(path: str) -> DocumentIndex:
    """Check ``path``'s rows in one streaming pass and keep their ids (see :class:`DocumentIndex`).

    Rows with an empty document or summary are counted in the report and left out. Duplicate ids are an error:
    every later stage keys on ``id`` (resuming, partitioning), so a duplicate would make a row vanish or appear
    twice downstream; they are refused here, before a stage does any work.

    The pass runs on the driver, without Ray: every id must reach the driver anyway, and Arrow's readers parse
    faster than Ray Data can schedule a pass (measured: 0.4 s here against 3.7 s for a Ray Data pass at
    8,192 documents, about a tenth of a mining run's fixed cost). A bad row, a duplicate id or an empty input is
    therefore refused before Ray starts. At the paper's scale (287K documents, 1.3 GB) the pass takes seconds; at
    millions of documents, minutes on one node, against days of mining.
    """
    fs, files, fmt, columns = check_documents(path)
    ids: list[pa.Array] = []
    reasons: Counter = Counter()
    try:
        for table in raw_tables(fs, files, fmt, columns):
            batch = _index_batch(table, columns)
            reason = batch.column(_DROP_COLUMN)
            counts = pc.value_counts(reason)
            reasons.update(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(),
                                    strict=True)))
            ids.append(batch.column("id").filter(pc.equal(reason, "")).combine_chunks())
    except (OSError, pa.ArrowException) as err:
        raise _read_error(err, path, fmt, fs, files) from None

    report = InputReport(path=path, files=files, rows_read=sum(reasons.values()))
    report.removed = {why: n for why, n in reasons.items() if why}
    report.rows_kept = reasons.get("", 0)
    if report.rows_kept == 0:
        raise InputError(f"{path}: no usable rows ({report.summary_line()})")

    kept = pa.concat_arrays(ids) if ids else pa.array([], pa.string())
    counts = pc.value_counts(kept)
    duplicated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if len(duplicated):
        shown = ", ".join(map(str, duplicated.slice(0, 5).to_pylist()))
        raise InputError(f"{path}: {len(duplicated)} id(s) occur more than once (e.g. {shown}); ids must be unique")
    return DocumentIndex(path=path, fs=fs, files=files, fmt=fmt, columns=columns, report=report, ids=kept)


def stream_documents(index: DocumentIndex, ids: pa.Array | None = None, *, exclude: bool = False) -> ray.data.Dataset:
    """The documents behind ``index`` as a lazy Ray Dataset (``id, document, summary``): read, normalised and
    filtered block by block as a consumer pulls them, so no stage holds the corpus in memory or in the object store.

    ``ids`` keeps only those rows (or, with ``exclude``, every row but those). When kept to ``ids``, the read stops
    as soon as all of them have come through, so a small selection does not wait for the whole corpus.
    """

    init_ray()  # at once if the stage started Ray already (a bare ray.data call would join any Ray on the machine)
    ds = _read_raw(index.files, index.fmt, index.fs, index.columns).map_batches(
        _valid_batch,
        fn_kwargs={"columns": index.columns, "ids": ids, "exclude": exclude},
        batch_format="pyarrow",
    )
    if ids is not None and not exclude:
        ds = ds.limit(len(ids))
    return ds


def read_documents(path: str, limit: int | None = None) -> tuple[ray.data.Dataset, InputReport]:
    """Documents from ``path`` as a streaming Ray Dataset with the columns ``id, document, summary``.

    Accepts JSON Lines, Parquet or CSV, a file or a folder, local or ``s3://``, with CNN/DailyMail's or XSum's
    column names. Every row is checked first (:func:`index_documents`: unreadable data, removed rows, duplicate
    ids), then the dataset streams the kept rows; ``limit`` keeps the first ``limit`` of them in file order.
    """
    index = index_documents(path)
    if limit is None:
        return stream_documents(index), index.report
    return stream_documents(index, index.ids.slice(0, limit)), index.report


def _root_message(err: BaseException) -> str:
    """The innermost error's message, without Ray's task tracebacks around it."""
    lines = [line.strip() for line in str(err).splitlines()]
    errors = [line for line in lines if _ERROR_LINE.match(line) and not line.startswith("ray.exceptions")]
    if errors:
        return errors[-1]
    return next((line for line in lines if line), type(err).__name__)


_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception|Invalid): ")


# ---------------------------------------------------------------------------------------------------------------
# Stage outputs


def read_parquet_dir(path: str, required_columns: Sequence[str]) -> ray.data.Dataset:
    """A previous stage's Parquet output, checked up front for the columns this stage needs."""
    import ray.data


    fs, files, fmt = resolve_files(path)
    if fmt != "parquet":
        raise InputError(f"{path}: expected a stage's Parquet output, found {fmt} files")
    for file in files:
        columns = _columns_of(fs, file, fmt)
        missing = [c for c in required_columns if c not in columns]
        if missing:
            raise InputError(
                f"{file}: missing column(s) {', '.join(missing)}; is this the output of the right stage?"
            )
    init_ray()
    filesystem = None if isinstance(fs, pafs.LocalFileSystem) else fs
    return ray.data.read_parquet(files, filesystem=filesystem)


def conform(batch: pa.Table, schema: pa.Schema) -> pa.Table:
    """``batch`` with exactly ``schema``'s columns, in order and type; a missing column is a bug, said plainly."""
    missing = [name for name in schema.names if name not in batch.column_names]
    if missing:
        raise ValueError(f"cannot write rows without the column(s) {', '.join(missing)} of the output schema")
    return batch.select(schema.names).cast(schema)


def write_parquet(ds: ray.data.Dataset, path: str, schema: pa.Schema) -> None:
    """Write ``ds`` as Parquet files under ``path`` with exactly ``schema`` (local folder or ``s3://``)."""
    conformed = ds.map_batches(conform, fn_kwargs={"schema": schema}, batch_format="pyarrow")
    conformed.write_parquet(path, schema=schema, filesystem=ray_filesystem(path))


__all__ = [
    "COLUMN_ALIASES",
    "FORMATS",
    "DocumentIndex",
    "InputReport",
    "content_id",
    "check_documents",
    "DROP_REASON",
    "input_columns",
    "marked_rows",
    "index_documents",
    "raw_tables",
    "read_documents",
    "stream_documents",
    "read_parquet_dir",
    "resolve_files",
    "write_parquet",
    "conform",
]
