"""Tolerant parsing of the two mining outputs (docs/paper.md#parsing).

LLMs do not keep to a format: they add preambles and notes, number or bullet the lines, wrap fields in
markdown, use any kind of bracket around triples (or none), label each field, reverse the field order, end
lines with CRLF, or drop a field. The parser recovers every line it can and reports every line that looks
like a rationale line but cannot be used, with the raw text and the reason; prose around the lines (a
preamble, a closing note) is kept in ``ignored`` rather than counted as a problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

Triple = tuple[str, str, str]


class ParseError(ValueError):
    """Nothing usable in an LLM output. ``problems`` holds what was rejected, ``raw`` the text."""

    def __init__(self, message: str, raw: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.raw = raw
        self.problems = problems or []


@dataclass(frozen=True)
class Problem:
    """One line the parser could not use, and why."""

    line: str
    reason: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.line}"


@dataclass
class Rationale:
    """Parallel lists, one entry per usable rationale line (``triples[i]`` is a list of triples)."""

    aspects: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    triples: list[list[Triple]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def add(self, aspect: str, sentence: str, triples: list[Triple]) -> None:
        self.aspects.append(aspect)
        self.sentences.append(sentence)
        self.triples.append(triples)


@dataclass
class Summaries:
    sub_summaries: list[str] = field(default_factory=list)
    total_summary: str | None = None
    problems: list[Problem] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- line cleaning

_OPEN, _CLOSE = "<[({", ">])}"
_PAIRS = dict(zip(_OPEN, _CLOSE, strict=True))
_FIELD_SEPARATORS = re.compile(r"\s*[|｜¦│]\s*")
_ALT_SEPARATORS = (re.compile(r"\t+"), re.compile(r"\s+;\s+"), re.compile(r"\s+[–—]\s+"), re.compile(r"\s+--\s+"))
_LIST_MARKER = re.compile(r"^(?:[-*+•·▪►‣◦]\s+|\(?\d{1,3}[.)\]:]\s*|\(?[a-z][.)]\s+|\[\d{1,3}\]\s*|#\d{1,3}[.:)]?\s+)")
_HEADING = re.compile(r"^(?:#{1,6}\s+|>\s*)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»"}
_RATIONALE_PREFIX = re.compile(r"^(?:the\s+)?rationale(?:\s*(?:line\s*)?#?\d{1,3})?\s*[:：.)-]\s*", re.IGNORECASE)
_LINE_PREFIX = re.compile(r"^(?:line|item|sentence\s+\d)\s*#?\d{1,3}\s*[:：.)-]\s*", re.IGNORECASE)
# The label words models put before a field, per field kind, in any case; the paper's abbreviations (EA, AS,
# TER) included. A label may carry a number ("Aspect 1"), a parenthesised alias ("Essential aspect (EA)") and
# markdown emphasis (stripped before matching); it ends with ':', '=' or a spaced dash ("Aspect - ...").
_FIELD_LABELS = (
    ("aspect", r"(?:essential|key|main|core)\s+aspects?|aspects?|topic|key\s+phrase|ea"),
    (
        "sentence",
        r"(?:associated|supporting|source|key|relevant|evidence|essential)\s+sentences?|sentences?|evidence|as",
    ),
    (
        "triples",
        r"(?:relation(?:al)?\s+|srl\s+|knowledge\s+)?(?:triples?|triplets?)(?:\s*\(s\))?"
        r"|triple\s+extraction(?:\s+results?)?|relations?|srl|ter",
    ),
)
_LABEL_NAME = (
    r"(?:task\s*\d\s*[:.)-]?\s*)?(?:(" + ")|(".join(p for _, p in _FIELD_LABELS) + r"))"
    r"(?:\s*#?\d{1,3})?(?:\s*\(.*?\))?"
)
_FIELD_LABEL = re.compile(r"^" + _LABEL_NAME + r"(?:\s*[:：=]\s*|\s+[-–—]\s+)", re.IGNORECASE)
_BARE_LABEL = re.compile(r"^" + _LABEL_NAME + r"\s*[:：=]?$", re.IGNORECASE)
# Any short label ("Quote:", "Key point:") on a field whose neighbours all carry known labels.
_OTHER_LABEL = re.compile(r"^[A-Za-z][A-Za-z()/'-]*(?:\s+[A-Za-z()/'-]+){0,2}\s*[:：]\s+")
_HEADER_ONLY = re.compile(r"^[^|#<>\[\]]{0,60}[:：]$")
_TABLE_RULE = re.compile(r"^[\s|:\-+=]+$")


def _strip_emphasis(text: str) -> str:
    return _EMPHASIS.sub("", text).strip()


def _strip_quotes(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]] and text[0] not in text[1:-1]:
        text = text[1:-1].strip()
    return text


def _clean_line(line: str) -> tuple[str, bool]:
    """The line without markdown decoration and list markers; the flag says it was a list item."""
    text = line.strip()
    text = _HEADING.sub("", text)
    listed = False
    bullet = re.match(r"^[*+\-]\s+", text)  # before emphasis is stripped, or "* item" loses its marker
    if bullet:
        listed, text = True, text[bullet.end() :]
    emphasis_free = _strip_emphasis(text)
    marker = _LIST_MARKER.match(emphasis_free)
    if marker:
        listed = True
        emphasis_free = emphasis_free[marker.end() :]
    prefix = _LINE_PREFIX.match(emphasis_free)
    if prefix:
        listed = True
        emphasis_free = emphasis_free[prefix.end() :]
    return emphasis_free.strip(), listed


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _field_label(text: str) -> tuple[str | None, str]:
    """(kind, rest) when ``text`` opens with a field label such as ``Aspect:``; (None, text) otherwise."""
    match = _FIELD_LABEL.match(text)
    if not match:
        return None, text
    kind = next(name for (name, _), group in zip(_FIELD_LABELS, match.groups(), strict=True) if group is not None)
    return kind, text[match.end() :].strip()


def _labelled_fields(fields: list[str]) -> tuple[list[str | None], list[str]]:
    """Each field's kind (None when unlabelled) and its text without the label.

    Models that label fields label all of them, often with words of their own ("Quote:"), so once the other
    fields of a line carry known labels, a short ``Word(s):`` prefix on the remaining one is a label too.
    """
    labelled = [_field_label(_strip_emphasis(f)) for f in fields]
    labels = [kind for kind, _ in labelled]
    values = [rest for _, rest in labelled]
    if len(fields) >= 3 and sum(kind is not None for kind in labels) >= len(fields) - 1:
        pairs = zip(labels, values, strict=True)
        values = [_OTHER_LABEL.sub("", value, count=1) if kind is None else value for kind, value in pairs]
    return labels, values


def _clean_field(text: str) -> str:
    text = _strip_emphasis(text).strip(" \t,;")
    return _strip_quotes(text)


# ------------------------------------------------------------------------------------------------- triples


def _split_groups(text: str) -> list[str]:
    """Top-level bracketed groups of ``text``, plus any loose text that holds '#' (bracketless triples)."""
    groups: list[str] = []
    loose: list[str] = []
    buf: list[str] = []
    stack: list[str] = []
    for ch in text:
        if ch in _OPEN:
            if not stack:
                loose.append("".join(buf))
                buf = []
                stack.append(_PAIRS[ch])
                continue
            stack.append(_PAIRS[ch])
        elif stack and ch == stack[-1]:
            # Only the expected closer closes: "<CNN)Recently ...>" keeps its stray ')' as text.
            stack.pop()
            if not stack:
                groups.append("".join(buf))
                buf = []
                continue
        buf.append(ch)
    (groups if stack else loose).append("".join(buf))
    for piece in loose:
        if "#" not in piece:
            continue
        # Bracketless triples separated by commas: a piece without '#' belongs to the previous triple's object.
        merged: list[str] = []
        for part in re.split(r"[,;]\s*", piece):
            if "#" in part or not merged:
                merged.append(part)
            else:
                merged[-1] += ", " + part
        groups.extend(m for m in merged if m.strip())
    return groups


def _group_triples(group: str) -> tuple[list[Triple], str | None]:
    """The triples in one group, or a reason it has none."""
    if "#" not in group:
        parts = [_clean_field(p) for p in group.split(",")]
        if len(parts) == 3 and all(parts):
            return [(parts[0], parts[1], parts[2])], None
        if any(c in group for c in _OPEN) and (nested := _parse_triple_text(group)[0]):
            return nested, None
        return [], f"no 'subject # relation # object' in {group.strip()!r}"
    if any(c in group for c in _OPEN) and "#" in group:
        nested, nested_problems = _parse_triple_text(group)
        if len(nested) > 1 or (nested and not nested_problems and _looks_nested(group)):
            return nested, None
    parts = group.split("#")
    if len(parts) < 3 or (len(parts) - 1) % 2:
        return [], f"a triple needs subject # relation # object, got {group.strip()!r}"
    # k triples written inside one bracket ("a # b # c, d # e # f") split into 2k+1 parts; every other
    # inner part holds "object, next subject".
    elements = [parts[0]]
    for i in range(1, len(parts) - 1):
        if i % 2 == 0:
            cut = max(parts[i].rfind(","), parts[i].rfind(";"))
            if cut < 0:
                return [], f"cannot tell where one triple ends and the next begins in {group.strip()!r}"
            elements.extend([parts[i][:cut], parts[i][cut + 1 :]])
        else:
            elements.append(parts[i])
    elements.append(parts[-1])
    cleaned = [_clean_field(_strip_edge_brackets(e)) for e in elements]
    triples = [tuple(cleaned[i : i + 3]) for i in range(0, len(cleaned), 3)]
    if not all(all(t) for t in triples):
        return [], f"a triple has an empty part in {group.strip()!r}"
    return triples, None  # type: ignore[return-value]


def _strip_edge_brackets(text: str) -> str:
    """Remove brackets left at the ends by a split, but keep balanced ones: "Dani Alves (left)" stays whole."""
    text = text.strip()
    while text and text[0] in _OPEN and text.count(text[0]) > text.count(_PAIRS[text[0]]):
        text = text[1:].strip()
    closers = {v: k for k, v in _PAIRS.items()}
    while text and text[-1] in _CLOSE and text.count(text[-1]) > text.count(closers[text[-1]]):
        text = text[:-1].strip()
    return text


def _looks_nested(group: str) -> bool:
    inner = group.strip()
    return bool(inner) and inner[0] in _OPEN


def _parse_triple_text(text: str) -> tuple[list[Triple], list[str]]:
    triples: list[Triple] = []
    reasons: list[str] = []
    for group in _split_groups(text):
        if not group.strip():
            continue
        found, reason = _group_triples(group)
        triples.extend(found)
        if reason:
            reasons.append(reason)
    return triples, reasons


def parse_triples(text: str) -> tuple[list[Triple], list[str]]:
    """Every ``(subject, relation, object)`` in a triples field, and a reason for each group that is not one."""
    return _parse_triple_text(text)


# ----------------------------------------------------------------------------------------------- rationale


def _triples_score(text: str) -> int:
    return text.count("#") * 2 + sum(text.count(c) for c in "<>")


def _assign_fields(fields: list[str], labels: list[str | None]) -> tuple[str, str, str] | str:
    """(aspect, sentence, triples-text) from a line's fields, or the reason they do not make a rationale."""
    if "triples" in labels:
        t = labels.index("triples")
    else:
        scores = [_triples_score(f) if "#" in f else 0 for f in fields]
        if not any(scores):
            return "no relation triples (subject # relation # object)"
        t = scores.index(max(scores))
    rest = [(f, lab) for i, (f, lab) in enumerate(zip(fields, labels, strict=True)) if i != t]
    if len(rest) < 2:
        return "a field is missing (expected aspect | associated sentence | triples)"
    aspect = next((f for f, lab in rest if lab == "aspect"), None)
    sentence = next((f for f, lab in rest if lab == "sentence"), None)
    unlabeled = [f for f, lab in rest if lab not in ("aspect", "sentence")]
    if aspect is None and sentence is None:
        if t == 0:  # XSum order: triples | sentence | aspect
            aspect, sentence = unlabeled[-1], " | ".join(unlabeled[:-1])
        elif t == len(fields) - 1:  # CNN/DM order: aspect | sentence | triples
            aspect, sentence = unlabeled[0], " | ".join(unlabeled[1:])
        else:  # triples in the middle: the key phrase is the shorter field
            ordered = sorted(unlabeled, key=len)
            aspect, sentence = ordered[0], " | ".join(f for f in unlabeled if f is not ordered[0])
    elif aspect is None:
        aspect = " | ".join(unlabeled)
    elif sentence is None:
        sentence = " | ".join(unlabeled)
    if not aspect or not sentence:
        return "a field is empty (expected aspect | associated sentence | triples)"
    return aspect, sentence, fields[t]


def _split_fields(text: str) -> list[str] | None:
    if _FIELD_SEPARATORS.search(text):
        fields = _FIELD_SEPARATORS.split(text)
    else:
        fields = None
        for separator in _ALT_SEPARATORS:
            candidate = separator.split(text)
            if len(candidate) >= 3:
                fields = candidate
                break
        if fields is None:
            return None
    # Markdown tables open and close with '|': those empty edge fields are not fields.
    while fields and not fields[0].strip():
        fields.pop(0)
    while fields and not fields[-1].strip():
        fields.pop()
    return fields


class _Record:
    """A rationale written over several labelled lines (``Aspect: ...`` / ``Sentence: ...`` / ``Triples: ...``)."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.raw: list[str] = []

    def complete(self) -> bool:
        return len(self.fields) == 3


def _use_line(result: Rationale, raw: str, aspect: str, sentence: str, triple_text: str) -> None:
    triples, reasons = parse_triples(triple_text)
    aspect, sentence = _clean_field(aspect), _clean_field(sentence)
    if not triples:
        reason = reasons[0] if reasons else "no relation triples (subject # relation # object)"
        result.problems.append(Problem(raw, reason))
        return
    if not aspect or not sentence:
        result.problems.append(Problem(raw, "a field is empty (expected aspect | associated sentence | triples)"))
        return
    result.add(aspect, sentence, triples)
    for reason in reasons:  # the line is kept; the unusable triple is still reported
        result.problems.append(Problem(raw, reason))


def _flush_record(result: Rationale, record: _Record) -> None:
    if not record.raw:
        return
    raw = " / ".join(record.raw)
    if record.complete():
        _use_line(result, raw, record.fields["aspect"], record.fields["sentence"], record.fields["triples"])
    else:
        missing = ", ".join(k for k in ("aspect", "sentence", "triples") if k not in record.fields)
        result.problems.append(Problem(raw, f"a labelled rationale without {missing}"))


def parse_rationale(text: str, dataset: str = "cnndm") -> Rationale:
    """The rationale lines of call A's output; raises :class:`ParseError` when there is none.

    CNN/DM lines read ``aspect | sentence | triples``, XSum lines ``triples | sentence | aspect``; the
    parser recognises the triples field by its content, so either order (and labelled fields) is accepted
    for either data set.
    """
    del dataset  # the field order is read from the line itself; kept for a stable signature
    result = Rationale()
    record = _Record()
    for raw_line in _lines(text or ""):
        raw = raw_line.strip()
        if not raw:
            continue
        line, listed = _clean_line(raw)
        line = _RATIONALE_PREFIX.sub("", line, count=1).strip()
        if not line or _TABLE_RULE.match(line):
            continue
        fields = _split_fields(line)
        if fields is None:
            kind, rest = _field_label(line)
            if kind is not None:
                if kind in record.fields:
                    _flush_record(result, record)
                    record = _Record()
                record.fields[kind] = rest
                record.raw.append(raw)
                if record.complete():
                    _flush_record(result, record)
                    record = _Record()
                continue
            if listed or "#" in line:
                result.problems.append(Problem(raw, "not in the form aspect | associated sentence | triples"))
            else:
                result.ignored.append(raw)
            continue
        if all(_BARE_LABEL.match(_strip_emphasis(f)) for f in fields):
            result.ignored.append(raw)  # a table header: "| Aspect | Sentence | Triples |"
            continue
        labels, values = _labelled_fields(fields)
        assigned = _assign_fields(values, labels)
        if isinstance(assigned, str):
            result.problems.append(Problem(raw, assigned))
            continue
        _use_line(result, raw, *assigned)
    _flush_record(result, record)
    if not result.aspects:
        reasons = "; ".join(sorted({p.reason for p in result.problems})) or "no line has the rationale format"
        raise ParseError(f"no usable rationale line ({reasons})", text, result.problems)
    return result


# ----------------------------------------------------------------------------------------------- summaries

_TOTAL_LABEL = re.compile(
    r"^(?:the\s+)?(?:task\s*5\s*[:.)-]?\s*)?(?:(?:total|overall|final|one[-\s]sentence|single[-\s]sentence|"
    r"combined|general|main)\s+)?summary(?:\s*\([^)]*\))?\s*(?:[:：=-]\s*|$)",
    re.IGNORECASE,
)
_INLINE_TOTAL = re.compile(r"\bsummary\b[^:：]{0,40}[:：]\s*(\S.*)$", re.IGNORECASE)
_SUB_HEADER = re.compile(r"\bsub[-\s]?summar(?:y|ies)\b", re.IGNORECASE)
_SUB_LABEL = re.compile(r"^(?:task\s*4\s*[:.)-]?\s*)?sub[-\s]?summary\s*#?\d{0,3}\s*[:：=-]\s*", re.IGNORECASE)
_WORDS = re.compile(r"\w{2,}")
_REFUSAL = re.compile(
    r"^(?:i'?m sorry|i am sorry|sorry,|i cannot|i can'?t|i am unable|i'?m unable|as an ai)\b", re.IGNORECASE
)
_NOTE = re.compile(r"^\(?(?:note|notes|n\.b\.|explanation|this summary|i hope)\b", re.IGNORECASE)


@dataclass
class _SummaryReading:
    """What :func:`parse_summaries` has read so far, line by line.

    ``total_lines`` holds a labelled total summary while it is read (``in_total``) and after it ended
    (``total_done``: a later label or listed line is no longer the summary); ``loose_paragraphs`` holds the
    unlabelled prose, one list per blank-line-separated paragraph, in case the model wrote no label at all.
    """

    result: Summaries = field(default_factory=Summaries)
    total_lines: list[str] = field(default_factory=list)
    in_total: bool = False
    total_done: bool = False
    loose_paragraphs: list[list[str]] = field(default_factory=lambda: [[]])

    def blank_line(self) -> None:
        """A blank line ends a labelled total summary being read, and the current prose paragraph."""
        if self.in_total and self.total_lines:
            self.in_total, self.total_done = False, True
        if self.loose_paragraphs[-1]:
            self.loose_paragraphs.append([])

    def total_summary(self) -> str | None:
        """The labelled total summary; without a label, the last prose paragraph (typical for the XSum call)."""
        if self.total_lines:
            return " ".join(t for t in self.total_lines if t)
        paragraphs = [" ".join(p) for p in self.loose_paragraphs if p]
        return paragraphs[-1] if paragraphs else None


# A summary rule reads one non-blank line (cleaned of markdown and list markers; ``listed`` says it was a list
# item) and returns True when the line is its shape: it has then been used or skipped, and no later rule sees it.
_SummaryRule = Callable[[str, bool, _SummaryReading], bool]


def _closing_note(line: str, listed: bool, reading: _SummaryReading) -> bool:
    """A note after the summary ("Note: one sentence.", "(Explanation: ...)", "I hope this helps"): it ends a
    labelled total summary and is never part of one."""
    if not _NOTE.match(line):
        return False
    reading.in_total = False
    reading.total_done = reading.total_done or bool(reading.total_lines)
    return True


def _total_label(line: str, listed: bool, reading: _SummaryReading) -> bool:
    """A total-summary label ("Summary:", "**Total summary:** ...", "Task 5: Overall summary = ...", "### Summary"),
    with the summary after it on the same line or on the lines below; "Sub-summary:" is not one."""
    if reading.total_done:
        return False
    match = _TOTAL_LABEL.match(line)
    if not match or _SUB_HEADER.search(line[: match.end()]):
        return False
    rest = _clean_field(line[match.end() :])
    reading.total_lines = [rest] if rest else []
    reading.in_total = True
    return True


def _total_continuation(line: str, listed: bool, reading: _SummaryReading) -> bool:
    """A total summary wrapped over several lines under its label ("Summary:\nScientists made a cell\nin a lab.")."""
    if not reading.in_total:
        return False
    reading.total_lines.append(_clean_field(line))
    return True


def _labelled_sub_summary(line: str, listed: bool, reading: _SummaryReading) -> bool:
    """A sub-summary with its own label ("Sub-summary 1: ...", "Task 4: sub-summary #2 - ..."); an empty one is
    dropped."""
    sub = _SUB_LABEL.match(line)
    if not sub:
        return False
    if rest := _clean_field(line[sub.end() :]):
        reading.result.sub_summaries.append(rest)
    return True


def _sub_summaries_header(line: str, listed: bool, reading: _SummaryReading) -> bool:
    """A header over the list of sub-summaries ("**Sub-summaries:**", "Multiple sub-summaries:",
    "### Multiple sub-summaries"): skipped."""
    return bool(_SUB_HEADER.search(line)) and bool(_HEADER_ONLY.match(line) or len(line) < 60)


def _listed_sub_summary(line: str, listed: bool, reading: _SummaryReading) -> bool:
    """A numbered or bulleted line before the total summary ("1. ...", "* ...", "- ..."): a sub-summary."""
    if not listed or reading.total_done:
        return False
    reading.result.sub_summaries.append(_clean_field(line))
    return True


def _inline_total(line: str, listed: bool, reading: _SummaryReading) -> bool:
    """A total summary after a sentence that names it ("Here is my one-sentence summary: ..."), when no labelled
    one came before; it ends the total summary."""
    if reading.total_done or reading.total_lines:
        return False
    inline = _INLINE_TOTAL.search(line)
    if not inline or inline.start() >= 60:
        return False
    reading.total_lines, reading.total_done = [_clean_field(inline.group(1))], True
    return True


def _preamble(line: str, listed: bool, reading: _SummaryReading) -> bool:
    """A short line that only announces what follows ("Here are the summaries:"): skipped."""
    return bool(_HEADER_ONLY.match(line))


def _loose_prose(line: str, listed: bool, reading: _SummaryReading) -> bool:
    """Any other line: unlabelled prose, kept by paragraph; the last paragraph is the total summary when the
    model wrote no label (typical for the XSum call). Last in the table: it takes every line."""
    reading.loose_paragraphs[-1].append(_clean_field(line))
    return True


# Applied in this order to each line; the first rule that returns True takes the line.
_SUMMARY_RULES: tuple[_SummaryRule, ...] = (
    _closing_note,
    _total_label,
    _total_continuation,
    _labelled_sub_summary,
    _sub_summaries_header,
    _listed_sub_summary,
    _inline_total,
    _preamble,
    _loose_prose,
)


def _read_summary_lines(text: str) -> _SummaryReading:
    """Every line of call B's output through the first :data:`_SUMMARY_RULES` rule that takes it."""
    reading = _SummaryReading()
    for raw_line in _lines(text):
        raw = raw_line.strip()
        if not raw:
            reading.blank_line()
            continue
        line, listed = _clean_line(raw)
        if not line:
            continue
        for rule in _SUMMARY_RULES:
            if rule(line, listed, reading):
                break
    return reading


def _usable_summary(summary: str | None) -> str | None:
    """``summary``, or None when it has no words or is a refusal ("I'm sorry, but I can't ...")."""
    if summary is not None and (not _WORDS.search(summary) or _REFUSAL.match(summary)):
        return None
    return summary


def parse_summaries(text: str, dataset: str = "cnndm") -> Summaries:
    """Call B's sub-summaries (CNN/DM) and total summary; raises :class:`ParseError` when both are absent."""
    reading = _read_summary_lines(text or "")
    result = reading.result
    result.total_summary = _usable_summary(reading.total_summary())
    result.sub_summaries = [s for s in result.sub_summaries if _WORDS.search(s)]
    if result.total_summary is None and not result.sub_summaries:
        raise ParseError("no summary in the output", text)
    if result.total_summary is None:
        result.problems.append(Problem("", "no total summary (Task 5) in the output"))
    if dataset == "cnndm" and not result.sub_summaries:
        result.problems.append(Problem("", "no sub-summaries (Task 4) in the output"))
    return result
