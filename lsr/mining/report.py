"""What a mining run produced, computed from the output files themselves (so a resumed run reports the whole).

Written next to the output directory as ``<output>.report.json`` and ``<output>.report.md``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from lsr.core.storage import write_text
from lsr.data.layout import mining_report_paths
from lsr.mining.cluster_timeline import describe


@dataclass
class MiningReport:
    input_path: str
    output_path: str
    dataset: str
    engine: str
    model: str
    input_rows: int = 0
    removed_at_read: dict[str, int] = field(default_factory=dict)
    resumed_from_earlier_runs: int = 0
    processed_this_run: int = 0
    retried_this_run: dict[str, int] = field(default_factory=dict)  # failed rows of earlier runs, by kind
    output_rows: int = 0
    done: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    truncated: int = 0
    with_problems: int = 0
    missing_ids: int = 0
    duplicate_ids: int = 0
    unexpected_ids: int = 0
    prompt_tokens_total: int = 0
    completion_tokens_total: int = 0
    #: Replies the parser read, of the replies the engine gave (None when no call of that kind was answered).
    rationale_replies: int = 0
    rationale_parsed: int = 0
    summaries_replies: int = 0
    summaries_parsed: int = 0
    #: Requests the engine was sent, and how many of them repeated a call (HTTP retries, calls sent again to a
    #: rebuilt vLLM engine).
    requests_sent: int = 0
    requests_resent: int = 0
    #: This run's requests as the chat clients counted them while sending (:mod:`lsr.mining.tally`; None without an
    #: LLM), and of them those no saved row accounts for: sent by actors or nodes that died, whose rows were lost
    #: and mined again (``rows_mined_again``: documents started this run minus rows saved this run).
    requests_sent_this_run: int | None = None
    requests_lost: int | None = None
    rows_mined_again: int | None = None
    prompt_tokens_per_document: float | None = None
    completion_tokens_per_document: float | None = None
    broken_files_removed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: This run's progress: when each output file was written (seconds since the run started), with the rows and
    #: completion tokens saved so far.
    timeline: list[dict[str, float]] = field(default_factory=list)
    #: The cluster under this run: alive nodes and mining replicas whenever either changed (seconds since the run
    #: started; :mod:`lsr.mining.cluster_timeline`), so an autoscaled run shows what it grew to and when.
    cluster: list[dict[str, float | int | None]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every input id is in the output exactly once."""
        return self.missing_ids == 0 and self.duplicate_ids == 0 and self.unexpected_ids == 0

    @property
    def outcome(self) -> str:
        """``ok`` (every row succeeded), ``some_failed``, ``all_failed`` or ``incomplete`` (ids missing)."""
        if not self.complete:
            return "incomplete"
        if self.failed == 0:
            return "ok"
        return "all_failed" if self.done == 0 else "some_failed"

    def to_dict(self) -> dict:
        return {**asdict(self), "complete": self.complete, "outcome": self.outcome, "parse_rate": self.parse_rate}

    @property
    def parse_rate(self) -> dict[str, float | None]:
        """Per call, the share of the engine's replies the parser could read."""
        return {"rationale": self.rationale_parsed / self.rationale_replies if self.rationale_replies else None,
                "summaries": self.summaries_parsed / self.summaries_replies if self.summaries_replies else None}

    def parse_line(self) -> str:
        return (f"parsed {self.rationale_parsed}/{self.rationale_replies} rationale and "
                f"{self.summaries_parsed}/{self.summaries_replies} summaries replies")

    def failure_line(self) -> str:
        """Why rows failed, for the error an all-failed run ends with."""
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.failed_by_reason.items()))
        return (
            f"every one of the {self.failed} rows failed ({reasons}); see the error column in {self.output_path}. "
            "Fix the cause and run the same command again: rows that failed for a transient reason are retried"
        )

    def summary_line(self) -> str:
        failed = ", ".join(f"{n} {why}" for why, n in sorted(self.failed_by_reason.items())) or "none"
        tokens = (
            f"{self.prompt_tokens_per_document:.0f} prompt + {self.completion_tokens_per_document:.0f} completion "
            "tokens per document"
            if self.prompt_tokens_per_document is not None
            else "no token counts (no LLM)"
        )
        state = (
            "complete" if self.complete else f"INCOMPLETE ({self.missing_ids} missing, {self.duplicate_ids} duplicated)"
        )
        return (
            f"mined {self.output_rows}/{self.input_rows} documents ({state}): {self.done} done, {self.failed} failed "
            f"[{failed}], {self.truncated} cut to fit the context; {self.parse_line()}; "
            f"{self.processed_this_run} this run, "
            f"{self.resumed_from_earlier_runs} from earlier runs"
            + (f" ({sum(self.retried_this_run.values())} failed rows retried)" if self.retried_this_run else "")
            + f"; {tokens}"
            + (f"; {self.requests_resent} request(s) sent again (HTTP retries, calls resent to a rebuilt engine)"
               if self.requests_resent else "")
            + (f"; {self.rework_line()}" if self.requests_lost or self.rows_mined_again else "")
        )

    def rework_line(self) -> str:
        return (f"{self.requests_lost} request(s) lost with failed actors/nodes (rows mined again: "
                f"{self.rows_mined_again})")

    def to_markdown(self) -> str:
        rows = [
            ("input", self.input_path),
            ("output", self.output_path),
            ("data set / engine / model", f"{self.dataset} / {self.engine} / {self.model}"),
            ("input rows", self.input_rows),
            ("removed when reading", ", ".join(f"{n} {k}" for k, n in self.removed_at_read.items()) or "none"),
            ("output rows", f"{self.output_rows} ({'complete' if self.complete else 'INCOMPLETE'})"),
            ("done", self.done),
            ("failed", self.failed),
            *((f"failed: {k}", n) for k, n in sorted(self.failed_by_reason.items())),
            ("truncated to fit the context", self.truncated),
            ("rows with unusable lines", self.with_problems),
            ("rationale replies parsed", f"{self.rationale_parsed} / {self.rationale_replies}"),
            ("requests sent / of them resent", f"{self.requests_sent} / {self.requests_resent}"),
            ("requests sent this run / lost with failed actors/nodes (rows mined again)",
             "n/a (no LLM)" if self.requests_sent_this_run is None else
             f"{self.requests_sent_this_run} / {self.requests_lost} ({self.rows_mined_again})"),
            ("summaries replies parsed", f"{self.summaries_parsed} / {self.summaries_replies}"),
            ("processed this run / earlier runs", f"{self.processed_this_run} / {self.resumed_from_earlier_runs}"),
            ("prompt tokens per document", _fmt(self.prompt_tokens_per_document)),
            ("completion tokens per document", _fmt(self.completion_tokens_per_document)),
            ("seconds (this run)", f"{self.seconds:.1f}"),
            ("cluster (first -> peak -> last)", describe(self.cluster) or "not sampled"),
        ]
        lines = ["# Mining report", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
        return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "n/a (no LLM)" if value is None else f"{value:.1f}"


#: The output columns :func:`fill_from_output` reads.
REPORT_COLUMNS = ("id", "error", "truncated", "problems", "prompt_tokens", "completion_tokens", "raw_rationale",
                  "raw_summaries", "aspects", "sub_summaries", "total_summary", "requests")


def error_category(error: str) -> str:
    return error.split(":", 1)[0].strip() or "unknown"


def fill_from_output(report: MiningReport, table: pa.Table, input_ids: pa.Array | Iterable[str]) -> MiningReport:
    """Count outcomes from the output's ``id, error, truncated, problems, *_tokens`` and reply columns
    (:data:`REPORT_COLUMNS`).

    The id sets are compared in Arrow (hash tables over the id buffers), not as Python sets, so checking a
    corpus of millions of ids costs the driver little more than the ids themselves.
    """
    if not isinstance(input_ids, pa.Array | pa.ChunkedArray):
        input_ids = pa.array(list(input_ids), pa.string())
    expected = pc.unique(input_ids)
    counts = pc.value_counts(table.column("id"))
    found, times = counts.field("values"), counts.field("counts")
    report.input_rows = len(expected)
    report.output_rows = table.num_rows
    report.duplicate_ids = int(pc.sum(pc.subtract(times, 1)).as_py() or 0)
    report.missing_ids = len(expected) - int(pc.sum(pc.is_in(expected, value_set=found)).as_py() or 0)
    report.unexpected_ids = len(found) - int(pc.sum(pc.is_in(found, value_set=expected)).as_py() or 0)
    errors = [e for e in table.column("error").to_pylist() if e is not None]
    report.failed = len(errors)
    report.done = table.num_rows - len(errors)
    report.failed_by_reason = dict(Counter(error_category(e) for e in errors))
    report.truncated = int(pc.sum(pc.cast(table.column("truncated"), pa.int64())).as_py() or 0)
    report.with_problems = int(pc.sum(pc.greater(pc.list_value_length(table.column("problems")), 0)).as_py() or 0)
    replied_a = pc.is_valid(table.column("raw_rationale"))
    replied_b = pc.is_valid(table.column("raw_summaries"))
    report.rationale_replies = _count(replied_a)
    report.rationale_parsed = _count(pc.and_(replied_a, pc.is_valid(table.column("aspects"))))
    report.summaries_replies = _count(replied_b)
    parsed_b = pc.or_(pc.is_valid(table.column("total_summary")), pc.is_valid(table.column("sub_summaries")))
    report.summaries_parsed = _count(pc.and_(replied_b, parsed_b))
    requests = pc.fill_null(table.column("requests"), 0)
    report.requests_sent = int(pc.sum(requests).as_py() or 0)
    report.requests_resent = report.requests_sent - _calls_made(table, requests)
    prompt = table.column("prompt_tokens")
    completion = table.column("completion_tokens")
    counted = table.num_rows - prompt.null_count
    report.prompt_tokens_total = int(pc.sum(prompt).as_py() or 0)
    report.completion_tokens_total = int(pc.sum(completion).as_py() or 0)
    if counted:
        report.prompt_tokens_per_document = report.prompt_tokens_total / counted
        report.completion_tokens_per_document = report.completion_tokens_total / counted
    return report


def _calls_made(table: pa.Table, requests: pa.ChunkedArray) -> int:
    """Calls the rows made: call A for every row that sent a request, call B where it answered or failed."""
    sent = pc.greater(requests, 0)
    errors = pc.fill_null(table.column("error"), "")
    made_b = pc.or_(pc.is_valid(table.column("raw_summaries")), pc.starts_with(errors, "summaries_"))
    return _count(sent) + _count(pc.and_(sent, made_b))


def _count(mask: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def write_report(report: MiningReport, output: str) -> tuple[str, str]:
    """Write the report of the mining output folder ``output`` beside it (``OUTPUT.report.json`` and ``.md``)."""
    paths = mining_report_paths(output)
    texts = (json.dumps(report.to_dict(), indent=2) + "\n", report.to_markdown())
    for path, text in zip(paths, texts, strict=True):
        write_text(path, text)
    return paths
