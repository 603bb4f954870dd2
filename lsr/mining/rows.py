"""What happens to one document between reading and writing, as pure functions (no Ray).

The job calls these from Ray Data operators; tests call them directly. A row moves through three shapes:
the prepared input (``id, document, summary, prompt_document, truncated``), the row after call A (plus the
raw rationale, its token counts, the parsed rationale as JSON, or an error), and the final row with exactly
the fields of :data:`lsr.core.schema.RATIONALES`. Intermediate rows keep only flat values (strings, numbers,
booleans) so that Arrow never has to infer nested types from a batch that happens to hold no rationale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lsr.data.sentences import split_sentences
from lsr.mining.engines.base import CallResult, ChatRequest
from lsr.mining.parse import ParseError, Problem, parse_rationale, parse_summaries
from lsr.mining.prompts import format_rationale, rationale_messages, summaries_messages
from lsr.mining.structured import parse_rationale_json, parse_summaries_json, rationale_schema, summaries_schema

#: Error categories; an ``error`` value is "<category>: <detail>" so reports can group by category.
RATIONALE_REQUEST_FAILED = "rationale_request_failed"
RATIONALE_UNPARSABLE = "rationale_unparsable"
RATIONALE_TRUNCATED = "rationale_truncated"
SUMMARIES_REQUEST_FAILED = "summaries_request_failed"
SUMMARIES_UNPARSABLE = "summaries_unparsable"
SUMMARIES_TRUNCATED = "summaries_truncated"
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
    structured: bool = False  # --structured-output: JSON prompts, schemas sent with the calls, the JSON parser
    json_chars_per_token: float = 3.0


def _add(a: int | None, b: int | None) -> int | None:
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)


def rationale_request(row: dict[str, Any], settings: MineSettings) -> ChatRequest | None:
    if not row.get("prompt_document"):
        return None
    messages = rationale_messages(row["prompt_document"], row["summary"], settings.dataset, settings.structured)
    schema = None
    if settings.structured:
        lines = len(split_sentences(row["summary"])) if settings.dataset == "cnndm" else 1
        schema = rationale_schema(settings.dataset, lines, settings.rationale_max_tokens, settings.json_chars_per_token)
    return ChatRequest(messages, settings.rationale_max_tokens, settings.temperature, schema)


def _cut_note(max_tokens: int) -> str:
    return f"the reply reached max_tokens ({max_tokens}) before it ended"


def _parse_failure(category: str, truncated_category: str, err: ParseError, result: CallResult,
                   max_tokens: int) -> str:
    """The row's error for a reply the parser refused: ``*_truncated`` when the engine cut it at ``max_tokens``
    (the budget, not the model, is what to change), ``*_unparsable`` otherwise."""
    if result.cut_at_max_tokens:
        return f"{truncated_category}: {_cut_note(max_tokens)} ({err})"
    return f"{category}: {err}"


def after_rationale(row: dict[str, Any], result: CallResult, settings: MineSettings) -> dict[str, Any]:
    """The row after call A: parsed when the call worked, with the error otherwise."""
    out = {name: row.get(name) for name in _INPUT_FIELDS}
    out.update(
        raw_rationale=result.text,
        rationale_json=None,
        a_prompt_tokens=result.prompt_tokens,
        a_completion_tokens=result.completion_tokens,
        a_requests=result.attempts if result.text is not None or result.error is not None else 0,
        a_error=None,
    )
    if row.get("a_error"):  # decided before the call (e.g. the document cannot fit the context)
        out["a_error"] = row["a_error"]
        return out
    if result.error is not None or result.text is None:
        out["a_error"] = f"{RATIONALE_REQUEST_FAILED}: {result.error or 'no text returned'}"
        return out
    parse = parse_rationale_json if settings.structured else parse_rationale
    try:
        parsed = parse(result.text, settings.dataset)
    except ParseError as err:
        out["a_error"] = _parse_failure(RATIONALE_UNPARSABLE, RATIONALE_TRUNCATED, err, result,
                                        settings.rationale_max_tokens)
        out["rationale_json"] = json.dumps({"problems": [str(p) for p in err.problems]})
        return out
    if result.cut_at_max_tokens:  # parsed, but its last line may be incomplete: say so
        parsed.problems.append(Problem("", _cut_note(settings.rationale_max_tokens)))
    out["rationale_json"] = json.dumps(
        {
            "aspects": parsed.aspects,
            "sentences": parsed.sentences,
            "triples": [[list(t) for t in line] for line in parsed.triples],
            "problems": [str(p) for p in parsed.problems],
        }
    )
    return out


def summaries_request(row: dict[str, Any], settings: MineSettings) -> ChatRequest | None:
    """Call B's request, from the document and the parsed rationale; ``None`` when call A failed."""
    if row.get("a_error") or not row.get("rationale_json"):
        return None
    rationale = json.loads(row["rationale_json"])
    text = format_rationale(rationale["aspects"], rationale["sentences"], rationale["triples"], settings.dataset)
    messages = summaries_messages(row["prompt_document"], text, settings.dataset, settings.structured)
    schema = None
    if settings.structured:
        schema = summaries_schema(settings.dataset, len(rationale["aspects"]), settings.summaries_max_tokens,
                                  settings.json_chars_per_token)
    return ChatRequest(messages, settings.summaries_max_tokens, settings.temperature, schema)


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
        "requests": row.get("a_requests") or 0,
        "truncated": bool(row.get("truncated")),
        "error": row.get("a_error"),
    }
    if out["error"] is not None or result is None:
        return out
    out["raw_summaries"] = result.text
    out["requests"] += result.attempts
    out["prompt_tokens"] = _add(out["prompt_tokens"], result.prompt_tokens)
    out["completion_tokens"] = _add(out["completion_tokens"], result.completion_tokens)
    if result.error is not None or result.text is None:
        out["error"] = f"{SUMMARIES_REQUEST_FAILED}: {result.error or 'no text returned'}"
        return out
    parse = parse_summaries_json if settings.structured else parse_summaries
    try:
        summaries = parse(result.text, settings.dataset)
    except ParseError as err:
        out["error"] = _parse_failure(SUMMARIES_UNPARSABLE, SUMMARIES_TRUNCATED, err, result,
                                      settings.summaries_max_tokens)
        return out
    out["sub_summaries"] = summaries.sub_summaries
    out["total_summary"] = summaries.total_summary
    problems.extend(str(p) for p in summaries.problems)
    if result.cut_at_max_tokens:
        problems.append(str(Problem("", _cut_note(settings.summaries_max_tokens))))
    return out


def offline_row(row: dict[str, Any], raw_rationale: str, raw_summaries_fn, settings: MineSettings) -> dict[str, Any]:
    """Both calls answered locally (the oracle): the same parsing and row shapes as for an LLM."""
    after_a = after_rationale(row, CallResult(raw_rationale, None, None, None, attempts=0), settings)
    if after_a["a_error"]:
        return final_row(after_a, None, settings)
    return final_row(after_a, CallResult(raw_summaries_fn(), None, None, None, attempts=0), settings)
