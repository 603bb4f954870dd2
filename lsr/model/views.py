"""The rationale views, named once: the model, the data pipeline, the target pass and the gate plot read this table.

A view is one of the rationale's three parts (docs/paper.md#views). Its entry says where it sits in the hierarchy (the
table's order: EA attends to the encoder, AS to EA, TER to AS), which mined column it is written from, how that
column's value becomes the text its alignment target encodes, and how plots label it. The paper does not fix the
text format; ours is:

- EA  (``<A>``): the aspects, in order, joined by ``" ; "``: ``"Clinton endorsement ; LPAC launch"``.
- AS  (``<S>``): the associated sentences, in order, joined by a space (they are sentences already).
- TER (``<R>``): every triple of every line, in order, as ``"subject # relation # object"``, joined by ``" ; "``.

Adding a view is one :class:`View` entry in :data:`VIEW_REGISTRY` (plus a mined column to write it from).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lsr.core.errors import InputError

ASPECT_SEPARATOR = " ; "
SENTENCE_SEPARATOR = " "
TRIPLE_SEPARATOR = " ; "
TRIPLE_FIELD_SEPARATOR = " # "


def _texts(items: Iterable[Any] | None) -> list[str]:
    return [str(x).strip() for x in (items if items is not None else []) if x is not None and str(x).strip()]


def triple_text(triple: Mapping[str, Any] | Sequence[Any]) -> str:
    """``"subject # relation # object"``; a missing part is left empty rather than dropping the triple."""
    if isinstance(triple, Mapping):
        parts = [triple.get("subject"), triple.get("relation"), triple.get("object")]
    else:
        parts = list(triple)
    return TRIPLE_FIELD_SEPARATOR.join("" if p is None else str(p).strip() for p in parts)


def _aspects_text(value: Any) -> str:
    return ASPECT_SEPARATOR.join(_texts(value))


def _sentences_text(value: Any) -> str:
    return SENTENCE_SEPARATOR.join(_texts(value))


def _triples_text(value: Any) -> str:
    triples = [triple_text(t) for line in (value if value is not None else []) for t in (line or [])]
    return TRIPLE_SEPARATOR.join(t for t in triples if t.replace("#", "").strip())


@dataclass(frozen=True)
class View:
    """One rationale view: its short name, the mined column it comes from, its text builder and its plot label."""

    name: str
    column: str
    text: Callable[[Any], str]
    title: str


#: Every view, in hierarchy order (the order the modules chain and the order of ``view_states``' view axis).
VIEW_REGISTRY: tuple[View, ...] = (
    View("ea", "aspects", _aspects_text, "EA (aspects)"),
    View("as", "sentences", _sentences_text, "AS (sentences)"),
    View("ter", "triples", _triples_text, "TER (triples)"),
)
VIEWS: tuple[str, ...] = tuple(v.name for v in VIEW_REGISTRY)
_BY_NAME: dict[str, View] = {v.name: v for v in VIEW_REGISTRY}


def view(name: str) -> View:
    """The registry entry of ``name``; a clear error for an unknown view."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InputError(f"unknown view {name!r}: choose among {', '.join(VIEWS)}") from None


def rationale_text(name: str, value: Any) -> str:
    """The text of view ``name`` of one row, from the value of its mined column (see the module docstring)."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown view {name!r}")
    return _BY_NAME[name].text(value)


def canonical_views(views: Any) -> list[str]:
    """``views`` validated and put in hierarchy order; a clear error names the unknown or repeated view."""
    if isinstance(views, str):
        views = [v for v in views.replace(",", " ").split() if v]
    views = [str(v).lower() for v in views]
    unknown = sorted(set(views) - set(VIEWS))
    if unknown:
        names = ", ".join(unknown)
        raise InputError(f"unknown MWF view(s) {names} (each unknown view must be one of {', '.join(VIEWS)})")
    if len(set(views)) != len(views):
        raise InputError(f"MWF views repeat a view: {views}")
    return [v for v in VIEWS if v in views]


def parse_views(text: str | None) -> list[str]:
    """``"ea,as,ter"`` -> ``["ea", "as", "ter"]`` in hierarchy order; ``"none"`` or ``""`` -> ``[]`` (baseline)."""
    if text is None:
        return list(VIEWS)
    items = [v.strip().lower() for v in text.replace(" ", ",").split(",") if v.strip()]
    if items in ([], ["none"]):
        return []
    try:
        return canonical_views(items)
    except InputError as err:
        raise InputError(f"--views {text!r}: {err}; or none for the plain baseline") from None


def view_columns(views: Sequence[str]) -> list[str]:
    """The mined columns ``views`` are written from."""
    return [view(v).column for v in views]
