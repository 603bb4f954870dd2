"""The two segmentation schemes, as pure functions over a chain's items (:mod:`lsr.ases.chain`).

*By source*: an item is one segment; it is ES when its role may be extractive (by default only the associated
sentence) and it is taken from the document: its ROUGE-L precision against the best-matching document sentence
(lower-cased words, no stemming) reaches the threshold. A paraphrased "associated sentence" is therefore AS, and
aspects, triples and sub-summaries are AS (a one-word aspect that occurs in the document is no extract).

*By entropy* (the AS-ES paper's rule): items are cut at sentence and clause boundaries; a piece is AS when a
scorer model's summed token entropy over it exceeds ``factor`` (1.4) times the mean over the chain's pieces, ES
otherwise. The entropies come from :mod:`lsr.ases.entropy`; here they are just numbers, one per piece.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsr.ases.chain import TAGS, Item, Segment
from lsr.data.sentences import split_sentences

DEFAULT_OVERLAP_THRESHOLD = 0.8
DEFAULT_EXTRACTIVE_ROLES = ("sentence",)
DEFAULT_ENTROPY_FACTOR = 1.4  # the AS-ES paper's threshold on a piece's entropy relative to the chain's mean

_WORD = re.compile(r"[a-z0-9]+")
# A clause ends at , ; : (or a sentence end) followed by white space.
_CLAUSE_END = re.compile(r"(?<=[,;:.!?])\s+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    row = [0] * (len(b) + 1)
    for x in a:
        previous = 0
        for j, y in enumerate(b, 1):
            current = row[j]
            row[j] = previous + 1 if x == y else max(row[j], row[j - 1])
            previous = current
    return row[-1]


def source_overlap(text: str, document_sentences: Sequence[Sequence[str]]) -> float:
    """ROUGE-L precision of ``text`` against its best-matching document sentence (word lists), in [0, 1]."""
    piece = words(text)
    if not piece:
        return 0.0
    return max((_lcs(piece, sentence) / len(piece) for sentence in document_sentences), default=0.0)


def document_sentences(document: str) -> list[list[str]]:
    """The document's sentences as lower-cased word lists (the comparison side of :func:`source_overlap`)."""
    return [words(s) for s in split_sentences(document) or [document]]


def by_source(
    items: Sequence[Item],
    document: str,
    *,
    threshold: float = DEFAULT_OVERLAP_THRESHOLD,
    extractive_roles: Sequence[str] = DEFAULT_EXTRACTIVE_ROLES,
) -> list[Segment]:
    """One segment per item, ES when it may be and is taken from the document (module docstring)."""
    sentences = document_sentences(document)
    segments = []
    for item in items:
        overlap = source_overlap(item.text, sentences)
        kind = "ES" if item.role in extractive_roles and overlap >= threshold else "AS"
        segments.append(Segment(item.tagged, kind, item.role, item.index, round(overlap, 6)))
    return segments


def split_clauses(text: str) -> list[str]:
    """``text`` cut after sentence and clause punctuation (``. ! ? , ; :`` followed by a space)."""
    return [piece for piece in (p.strip() for p in _CLAUSE_END.split(text.strip())) if piece]


def entropy_pieces(items: Sequence[Item]) -> list[tuple[Item, str]]:
    """The pieces the entropy scheme scores: each item's clauses, the first one carrying the item's tag."""
    pieces = []
    for item in items:
        for position, clause in enumerate(split_clauses(item.text)):
            pieces.append((item, f"{TAGS[item.role]}: {clause}" if position == 0 else clause))
    return pieces


def label_by_entropy(entropies: Sequence[float], factor: float = DEFAULT_ENTROPY_FACTOR) -> list[str]:
    """AS for a piece whose summed entropy exceeds ``factor`` x the chain's mean, else ES."""
    if not entropies:
        return []
    cut = factor * sum(entropies) / len(entropies)
    return ["AS" if value > cut else "ES" for value in entropies]


def by_entropy(
    pieces: Sequence[tuple[Item, str]], entropies: Sequence[float], *, factor: float = DEFAULT_ENTROPY_FACTOR
) -> list[Segment]:
    """Segments of :func:`entropy_pieces` typed by their summed token entropies (one per piece, same order)."""
    if len(pieces) != len(entropies):
        raise ValueError(f"{len(pieces)} pieces but {len(entropies)} entropies")
    labels = label_by_entropy(entropies, factor)
    return [
        Segment(text, kind, item.role, item.index, round(float(value), 6))
        for (item, text), kind, value in zip(pieces, labels, entropies, strict=True)
    ]
