"""Structured output (``--structured-output``): the JSON schemas the two mining calls' replies are held to, and the
parser that reads such a reply into the same rationale and summaries as the free-text parser.

Why: the paper's prompts ask for a line format (``aspect | sentence | <s # r # o>``) that a strong model follows
and a weak one does not; with the schema the engine itself constrains decoding (vLLM's structured outputs, an
OpenAI-compatible ``response_format`` of type ``json_schema``), so even a small or random model's reply has the
shape. Measured on the tests' tiny random Llama: 0 of 16 replies parse as free text, 16 of 16 with the schema.

Bounded so that replies end. Under a grammar a model may write every string to its longest allowed length (a
random one does), so each string has a ``maxLength`` and each list a ``maxItems``, derived from the call's token
budget: of ``max_tokens``, 10 % is kept as a margin, the JSON skeleton (keys, quotes, brackets; counted at 1.5
characters a token, as the shipped tokenizer splits it) is taken off, and the rest, at ``--json-chars-per-token``
characters a token, is shared evenly by the rationale lines (one per gold summary sentence, exactly, as the paper
asks) and inside a line by :data:`LINE_SHARES`. The skeleton may take at most half the budget: a summary of many
sentences gets fewer triples per line (3 at most).

The default of 3 characters a token suits a real model (English in a Llama tokenizer is about 4) and leaves an
associated sentence some 240 characters at CNN/DM's budget of 1,024 tokens for four lines. A model that writes runs
of one-character tokens, as the tests' random one does, needs ``--json-chars-per-token 1`` for every reply to end.
A reply the engine still cuts at ``max_tokens`` is reported as truncated, not unparsable; if associated sentences
come back cut at their bound, raise ``--rationale-max-tokens`` (or ``--json-chars-per-token``).
"""

from __future__ import annotations

import json
from typing import Any

from lsr.mining.parse import ParseError, Problem, Rationale, Summaries, Triple

#: Share of ``max_tokens`` the bounds leave unused, so that a reply at every bound still ends inside the budget.
MARGIN = 0.1
#: Characters of JSON skeleton (keys, quotes, brackets) per token: short keys and punctuation tokenise densely
#: (the shipped tokenizer: 668 characters in 429 tokens).
SKELETON_CHARS_PER_TOKEN = 1.5
#: The most of the usable budget the skeleton may take; beyond it a line gets fewer triples.
SKELETON_SHARE = 0.5
#: How a rationale line's characters are shared by its fields (the triples' share over all their parts).
LINE_SHARES = {"aspect": 0.1, "sentence": 0.55, "triples": 0.35}
#: Triples per rationale line at most (the paper's examples have one to three).
MAX_TRIPLES = 3
#: No string bound below this many characters, however small the budget.
MIN_CHARS = 8
#: Fewer triples per line rather than subjects, relations and objects shorter than this.
MIN_TRIPLE_CHARS = 20
TRIPLE_FIELDS = ("subject", "relation", "object")


def _string(max_chars: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max(MIN_CHARS, int(max_chars))}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these keys, in this order (a grammar writes them in the order given)."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _skeleton_tokens(schema: dict[str, Any]) -> float:
    return len(_skeleton(schema)) / SKELETON_CHARS_PER_TOKEN


def _content_chars(max_tokens: int, schema: dict[str, Any], chars_per_token: float) -> float:
    """Characters the strings of one reply may hold in all: the budget less the margin and the skeleton."""
    return max(0.0, max_tokens * (1 - MARGIN) - _skeleton_tokens(schema)) * chars_per_token


def _bounded(build, max_tokens: int, chars_per_token: float, per: int = 1) -> dict[str, Any]:
    """``build(chars, triples)`` with ``chars`` its content characters shared by ``per``, and the most triples per
    line (at most :data:`MAX_TRIPLES`, at least 1) whose skeleton fits :data:`SKELETON_SHARE` of the budget and
    whose subjects, relations and objects may still hold :data:`MIN_TRIPLE_CHARS` characters."""
    usable = max_tokens * (1 - MARGIN)

    def line_chars(k: int) -> float:
        return _content_chars(max_tokens, build(0, k), chars_per_token) / per

    def fits(k: int) -> bool:
        part = line_chars(k) * LINE_SHARES["triples"] / (k * len(TRIPLE_FIELDS))
        return _skeleton_tokens(build(0, k)) <= SKELETON_SHARE * usable and part >= MIN_TRIPLE_CHARS

    triples = next((k for k in range(MAX_TRIPLES, 0, -1) if fits(k)), 1)
    return build(line_chars(triples), triples)


def _skeleton(schema: dict[str, Any]) -> str:
    """The reply with every string empty and every list at its longest: the characters that are not content."""
    kind = schema["type"]
    if kind == "object":
        return json.dumps({k: json.loads(_skeleton(v)) for k, v in schema["properties"].items()},
                          separators=(",", ":"))
    if kind == "array":
        return json.dumps([json.loads(_skeleton(schema["items"]))] * schema["maxItems"], separators=(",", ":"))
    return '""'


def _line_schema(line_chars: float, dataset: str, triples: int = MAX_TRIPLES) -> dict[str, Any]:
    part = line_chars * LINE_SHARES["triples"] / (triples * len(TRIPLE_FIELDS))
    triple = _object({name: _string(part) for name in TRIPLE_FIELDS})
    fields = {
        "aspect": _string(line_chars * LINE_SHARES["aspect"]),
        "sentence": _string(line_chars * LINE_SHARES["sentence"]),
        "triples": {"type": "array", "items": triple, "minItems": 1, "maxItems": triples},
    }
    # XSum's rationale is dug in reverse (triples, then the sentence, then the aspect): the keys follow that order.
    order = ("aspect", "sentence", "triples") if dataset == "cnndm" else ("triples", "sentence", "aspect")
    return _object({name: fields[name] for name in order})


def rationale_schema(dataset: str, lines: int, max_tokens: int, chars_per_token: float) -> dict[str, Any]:
    """Call A's schema: CNN/DM ``{"rationales": [LINE x lines]}`` (one per gold summary sentence), XSum one LINE."""
    if dataset == "xsum":
        return _bounded(lambda chars, k: _line_schema(chars, dataset, k), max_tokens, chars_per_token)
    lines = max(1, lines)

    def schema(line_chars: float, triples: int) -> dict[str, Any]:
        items = _line_schema(line_chars, dataset, triples)
        return _object({"rationales": {"type": "array", "items": items, "minItems": lines, "maxItems": lines}})

    return _bounded(schema, max_tokens, chars_per_token, per=lines)


def summaries_schema(dataset: str, lines: int, max_tokens: int, chars_per_token: float) -> dict[str, Any]:
    """Call B's schema: CNN/DM one sub-summary per rationale line and the total summary, XSum the summary only."""
    if dataset == "xsum":
        return _bounded(lambda chars, _: _object({"total_summary": _string(chars)}), max_tokens, chars_per_token)
    lines = max(1, lines)

    def schema(share: float, _: int) -> dict[str, Any]:
        sub = {"type": "array", "items": _string(share), "minItems": lines, "maxItems": lines}
        return _object({"sub_summaries": sub, "total_summary": _string(share)})

    return _bounded(schema, max_tokens, chars_per_token, per=lines + 1)


# ------------------------------------------------------------------------------------------------ the parser


def _load(text: str) -> Any:
    """The reply as JSON. ``strict=False``: a grammar may let raw control characters (a newline) into a string,
    which strict JSON forbids; the meaning is unambiguous, so they are read."""
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError as err:
        raise ParseError(f"not a JSON object ({err.msg} at character {err.pos})", text) from None


def _clean(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _triples(value: Any) -> list[Triple]:
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if isinstance(item, dict):
            parts = tuple(_clean(item.get(name)) for name in TRIPLE_FIELDS)
            if all(parts):
                out.append(parts)
    return out


def parse_rationale_json(text: str, dataset: str) -> Rationale:
    """The rationale of a call-A JSON reply; an entry missing a field is a problem (kept with the raw entry), and
    a reply with no usable entry is a :class:`ParseError`."""
    data = _load(text)
    if dataset == "xsum":
        entries = [data]
    else:
        entries = data.get("rationales") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ParseError('no "rationales" list in the JSON reply', text)
    rationale = Rationale()
    for entry in entries:
        entry = entry if isinstance(entry, dict) else {}
        aspect, sentence, triples = _clean(entry.get("aspect")), _clean(entry.get("sentence")), _triples(
            entry.get("triples"))
        missing = [name for name, value in (("aspect", aspect), ("sentence", sentence), ("triples", triples))
                   if not value]
        if missing:
            rationale.problems.append(Problem(json.dumps(entry, ensure_ascii=False), f"no {', no '.join(missing)}"))
            continue
        rationale.add(aspect, sentence, triples)
    if not rationale.aspects:
        raise ParseError("no usable rationale entry in the JSON reply", text, rationale.problems)
    return rationale


def parse_summaries_json(text: str, dataset: str) -> Summaries:
    """The sub-summaries (CNN/DM) and the total summary of a call-B JSON reply, with the free-text parser's rules:
    a reply with neither is a :class:`ParseError`, a missing part or an empty sub-summary a problem."""
    data = _load(text)
    if not isinstance(data, dict):
        raise ParseError("the JSON reply is not an object", text)
    summaries = Summaries(total_summary=_clean(data.get("total_summary")) or None)
    subs = data.get("sub_summaries") if dataset == "cnndm" else None
    for item in subs if isinstance(subs, list) else []:
        cleaned = _clean(item)
        if cleaned:
            summaries.sub_summaries.append(cleaned)
        else:
            summaries.problems.append(Problem(json.dumps(item, ensure_ascii=False), "empty sub-summary"))
    if summaries.total_summary is None and not summaries.sub_summaries:
        raise ParseError("no summary in the JSON reply", text, summaries.problems)
    if summaries.total_summary is None:
        summaries.problems.append(Problem("", "no total summary (Task 5) in the JSON reply"))
    if dataset == "cnndm" and not summaries.sub_summaries:
        summaries.problems.append(Problem("", "no sub-summaries (Task 4) in the JSON reply"))
    return summaries
