"""What happens to one document between reading and writing, as pure functions (no Ray).

The job calls these from Ray Data operators; tests call them directly. A row moves through three shapes:
the prepared input (``id, document, summary, prompt_document, truncated``), the row after call A (plus the
raw rationale, its token counts, the parsed rationale as JSON, or an error), and the final row with exactly
the fields of :data:`lsr.schema.RATIONALES`. Intermediate rows keep only flat values (strings, numbers,
booleans) so that Arrow never has to infer nested types from a batch that happens to hold no rationale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lsr.mining.engines.base import CallResult
from lsr.parse import ParseError, parse_rationale, parse_summaries
from lsr.prompts import format_rationale, rationale_messages, summaries_messages

#: Error categories; an ``error`` value is "<category>: <detail>" so reports can group by category.
RATIONALE_REQUEST_FAILED = "rationale_request_failed"
RATIONALE_UNPARSABLE = "rationale_unparsable"
SUMMARIES_REQUEST_FAILED = "summaries_request_failed"
SUMMARIES_UNPARSABLE = "summaries_unparsable"
DOCUMENT_TOO_LONG = "document_too_long"

_INPUT_FIELDS = ("id", "document", "summary", "prompt_document", "truncated")


@dataclass(frozen=True)
class MineSettings:
    """What every row needs to know about the run (pickled into the Ray operators)."""

    dataset: str
    engine: str
    model: str
    rationale_max_tokens: int
    summaries_max_tokens: int
    temperature: float = 0.0


def _add(a: int | None, b: int | None) -> int | None:
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)


def rationale_request(row: dict[str, Any], settings: MineSettings) -> tuple[list[dict], int, float] | None:
    if not row.get("prompt_document"):
        return None
    messages = rationale_messages(row["prompt_document"], row["summary"], settings.dataset)
    return messages, settings.rationale_max_tokens, settings.temperature


def after_rationale(row: dict[str, Any], result: CallResult, settings: MineSettings) -> dict[str, Any]:
    """The row after call A: parsed when the call worked, with the error otherwise."""
    out = {name: row.get(name) for name in _INPUT_FIELDS}
    out.update(
        raw_rationale=result.text,
        rationale_json=None,
        a_prompt_tokens=result.prompt_tokens,
        a_completion_tokens=result.completion_tokens,
        a_error=None,
    )
    if row.get("a_error"):  # decided before the call (e.g. the document cannot fit the context)
        out["a_error"] = row["a_error"]
        return out
    if result.error is not None or result.text is None:
        out["a_error"] = f"{RATIONALE_REQUEST_FAILED}: {result.error or 'no text returned'}"
        return out
    try:
        parsed = parse_rationale(result.text, settings.dataset)
    except ParseError as err:
        out["a_error"] = f"{RATIONALE_UNPARSABLE}: {err}"
        out["rationale_json"] = json.dumps({"problems": [str(p) for p in err.problems]})
        return out
    out["rationale_json"] = json.dumps(
        {
            "aspects": parsed.aspects,
            "sentences": parsed.sentences,
            "triples": [[list(t) for t in line] for line in parsed.triples],
            "problems": [str(p) for p in parsed.problems],
        }
    )
    return out


def summaries_request(row: dict[str, Any], settings: MineSettings) -> tuple[list[dict], int, float] | None:
    """Call B's messages, from the document and the parsed rationale; ``None`` when call A failed."""
    if row.get("a_error") or not row.get("rationale_json"):
        return None
    rationale = json.loads(row["rationale_json"])
    text = format_rationale(rationale["aspects"], rationale["sentences"], rationale["triples"], settings.dataset)
    return (
        summaries_messages(row["prompt_document"], text, settings.dataset),
        settings.summaries_max_tokens,
        settings.temperature,
    )


def final_row(row: dict[str, Any], result: CallResult | None, settings: MineSettings) -> dict[str, Any]:
    """The output row (the fields of ``RATIONALES``); ``result`` is call B's, or ``None`` if it was not made."""
    rationale = json.loads(row["rationale_json"]) if row.get("rationale_json") else {}
    problems = list(rationale.get("problems", []))
    out: dict[str, Any] = {
        "id": row["id"],
        "document": row["document"],
        "summary": row["summary"],
        "aspects": rationale.get("aspects"),
        "sentences": rationale.get("sentences"),
        "triples": [[{"subject": s, "relation": r, "object": o} for s, r, o in line] for line in rationale["triples"]]
        if "triples" in rationale
        else None,
        "sub_summaries": None,
        "total_summary": None,
        "raw_rationale": row.get("raw_rationale"),
        "raw_summaries": None,
        "problems": problems,
        "engine": settings.engine,
        "model": settings.model,
        "prompt_tokens": row.get("a_prompt_tokens"),
        "completion_tokens": row.get("a_completion_tokens"),
        "truncated": bool(row.get("truncated")),
        "error": row.get("a_error"),
    }
    if out["error"] is not None or result is None:
        return out
    out["raw_summaries"] = result.text
    out["prompt_tokens"] = _add(out["prompt_tokens"], result.prompt_tokens)
    out["completion_tokens"] = _add(out["completion_tokens"], result.completion_tokens)
    if result.error is not None or result.text is None:
        out["error"] = f"{SUMMARIES_REQUEST_FAILED}: {result.error or 'no text returned'}"
        return out
    try:
        summaries = parse_summaries(result.text, settings.dataset)
    except ParseError as err:
        out["error"] = f"{SUMMARIES_UNPARSABLE}: {err}"
        return out
    out["sub_summaries"] = summaries.sub_summaries
    out["total_summary"] = summaries.total_summary
    problems.extend(str(p) for p in summaries.problems)
    return out


def offline_row(row: dict[str, Any], raw_rationale: str, raw_summaries_fn, settings: MineSettings) -> dict[str, Any]:
    """Both calls answered locally (the oracle): the same parsing and row shapes as for an LLM."""
    after_a = after_rationale(row, CallResult(raw_rationale, None, None, None), settings)
    if after_a["a_error"]:
        return final_row(after_a, None, settings)
    return final_row(after_a, CallResult(raw_summaries_fn(), None, None, None), settings)
