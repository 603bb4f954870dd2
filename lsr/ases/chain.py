"""The rationale chain of a mined row, its segments, its turns, and the text the AS-ES student reads and writes.

A mined row becomes a chain of *items*, each a tagged text: per rationale line the associated sentence, then the
aspect, then the triples (``Sentence: ...``, ``Aspect: ...``, ``Triples: s # r # o ; ...``), then the
sub-summaries; the total summary closes the chain (``Summary: ...``). The sentence comes first in a line so the
chain naturally opens with an extract and goes on with what is abstracted from it.

A segmentation scheme (:mod:`lsr.ases.segment`) cuts items into *segments* and types each ES or AS. Consecutive
segments of one type form a *turn*; turns alternate strictly, ES first (an empty ES turn opens a chain whose first
segment is AS), so generation can alternate models (dual) or prefixes (unified) without asking which comes next.
The final summary is never segmented: it is appended to the last AS turn (or is its own AS turn), and a turn that
holds the ``Summary:`` item ends generation.

Inside a turn, pieces of one item are joined by a space and items by :data:`ITEM_SEPARATOR`; an item that goes
on in the next turn (an entropy split can type two clauses of a sentence differently) continues without a tag,
which is how :func:`parse_turns` puts it back together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from lsr.model.views import triple_text

SegmentType = Literal["ES", "AS"]
TYPES: tuple[SegmentType, SegmentType] = ("ES", "AS")

#: Item roles and their tags, in the order they appear in a line.
TAGS: dict[str, str] = {
    "sentence": "Sentence",
    "aspect": "Aspect",
    "triples": "Triples",
    "sub_summary": "Sub-summary",
    "summary": "Summary",
}
ROLES: tuple[str, ...] = tuple(TAGS)
ITEM_SEPARATOR = " | "
TRIPLE_JOIN = " ; "
_TAG_RE = re.compile(r"^\s*(" + "|".join(re.escape(t) for t in TAGS.values()) + r")\s*:\s*", re.IGNORECASE)
_ROLE_OF_TAG = {tag.lower(): role for role, tag in TAGS.items()}


@dataclass(frozen=True)
class Item:
    """One element of the chain: its role, its position in the chain and its text (without the tag)."""

    role: str
    index: int
    text: str

    @property
    def tagged(self) -> str:
        return f"{TAGS[self.role]}: {self.text}"


@dataclass(frozen=True)
class Segment:
    """A piece of an item with its type; ``score`` is what decided it (overlap or summed entropy)."""

    text: str
    type: SegmentType
    role: str
    item: int
    score: float = 0.0

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Turn:
    """Consecutive segments of one type, as the text one generation step produces."""

    type: SegmentType
    text: str


def _clean(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def chain_items(row: Mapping[str, Any]) -> list[Item]:
    """The rationale items of a mined row, in chain order (the total summary is not one: see :func:`turns`)."""
    texts: list[tuple[str, str]] = []
    aspects = list(row.get("aspects") or [])
    sentences = list(row.get("sentences") or [])
    triples = list(row.get("triples") or [])
    for line in range(max(len(aspects), len(sentences), len(triples))):
        if line < len(sentences):
            texts.append(("sentence", _clean(sentences[line])))
        if line < len(aspects):
            texts.append(("aspect", _clean(aspects[line])))
        if line < len(triples):
            line_triples = [triple_text(t) for t in (triples[line] or [])]
            texts.append(("triples", TRIPLE_JOIN.join(t for t in line_triples if t.replace("#", "").strip())))
    texts += [("sub_summary", _clean(s)) for s in row.get("sub_summaries") or []]
    return [Item(role, i, text) for i, (role, text) in enumerate((r, t) for r, t in texts if t)]


def turns(segments: Sequence[Segment], summary: str) -> list[Turn]:
    """The alternating turns (ES first) of a segmented chain, closed by the ``Summary:`` item (module docstring)."""
    groups: list[tuple[SegmentType, list[Segment]]] = []
    for segment in segments:
        if not segment.text.strip():
            continue
        if groups and groups[-1][0] == segment.type:
            groups[-1][1].append(segment)
        else:
            groups.append((segment.type, [segment]))
    if not groups or groups[0][0] == "AS":
        groups.insert(0, ("ES", []))
    result = [Turn(kind, _join(pieces)) for kind, pieces in groups]
    final = f"{TAGS['summary']}: {_clean(summary)}"
    if result[-1].type == "AS":
        last = result[-1]
        result[-1] = Turn("AS", f"{last.text}{ITEM_SEPARATOR}{final}" if last.text else final)
    else:
        result.append(Turn("AS", final))
    return result


def _join(pieces: Sequence[Segment]) -> str:
    """Pieces of one item joined by a space, items by :data:`ITEM_SEPARATOR`."""
    text = pieces[0].text if pieces else ""
    for previous, piece in zip(pieces, pieces[1:], strict=False):
        text += (" " if previous.item == piece.item else ITEM_SEPARATOR) + piece.text
    return text


# ---- reading the chain back (generated turns -> structured rationale) -------------------------------------------


@dataclass
class Rationale:
    """A chain read back into its parts; ``items`` keeps every item in order as ``(role, text)``."""

    items: list[tuple[str, str]] = field(default_factory=list)
    summary: str = ""
    finished: bool = False

    def texts(self, role: str) -> list[str]:
        return [text for r, text in self.items if r == role]

    def as_dict(self) -> dict[str, Any]:
        return {
            "aspects": self.texts("aspect"),
            "sentences": self.texts("sentence"),
            "triples": [[t.strip() for t in text.split(TRIPLE_JOIN.strip()) if t.strip()]
                        for text in self.texts("triples")],
            "sub_summaries": self.texts("sub_summary"),
            "summary": self.summary,
            "finished": self.finished,
        }


def parse_turns(texts: Iterable[str]) -> Rationale:
    """The items of generated turns: a tagged fragment opens an item, an untagged one continues the last one.

    Text before any tag becomes an item of role ``"untagged"`` rather than being dropped.
    """
    items: list[list[str]] = []
    for text in texts:
        for fragment in (f.strip() for f in text.split(ITEM_SEPARATOR.strip())):
            if not fragment:
                continue
            match = _TAG_RE.match(fragment)
            if match:
                items.append([_ROLE_OF_TAG[match.group(1).lower()], fragment[match.end():].strip()])
            elif items:
                items[-1][1] = f"{items[-1][1]} {fragment}".strip()
            else:
                items.append(["untagged", fragment])
    rationale = Rationale(items=[(role, text) for role, text in items if role != "summary"])
    summaries = [text for role, text in items if role == "summary"]
    if summaries:
        rationale.summary, rationale.finished = summaries[-1], True
    return rationale


def is_final(turn_text: str) -> bool:
    """Whether a generated turn holds the ``Summary:`` item, which ends generation."""
    matches = (_TAG_RE.match(f.strip()) for f in turn_text.split(ITEM_SEPARATOR.strip()))
    return any(m is not None and _ROLE_OF_TAG[m.group(1).lower()] == "summary" for m in matches)


# ---- the student's input ----------------------------------------------------------------------------------------

#: Unified variant: the type of the segment to write, as the first words of the input.
PREFIX: dict[str, str] = {"ES": "[extract]", "AS": "[abstract]"}
DOCUMENT_MARK = "[document]"


def source_text(document: str, done: Sequence[Turn], next_type: SegmentType, *, unified: bool) -> str:
    """What the student reads to write the next turn: the chain so far, then the document (plus a type prefix
    in the unified variant). The chain comes before the document so that truncating a long input cuts the
    document's tail, never the chain the next segment depends on.
    """
    context = " ".join(f"[{turn.type}] {turn.text}" for turn in done)
    parts = [PREFIX[next_type]] if unified else []
    if context:
        parts.append(context)
    parts += [DOCUMENT_MARK, document]
    return " ".join(parts)
