"""The served AS-ES student explains itself: its generated rationale, located in the document.

:func:`explain` is pure (generated chain + document -> JSON-ready dict), for ``POST /summarize`` with
``explain: true``. Each associated sentence is looked up in the document: an exact match (case and white space
ignored) gives its character span; otherwise the best-matching document sentence is taken when its ROUGE-L
precision reaches ``threshold`` (``match: "approximate"``); otherwise the sentence is flagged
``grounded: false``: the student wrote it, the document does not say it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lsr.ases.generate import Generated
from lsr.ases.segment import DEFAULT_OVERLAP_THRESHOLD, source_overlap, words
from lsr.data.sentences import split_sentences


def _loose_pattern(text: str) -> re.Pattern[str] | None:
    tokens = text.split()
    if not tokens:
        return None
    return re.compile(r"\s+".join(re.escape(t) for t in tokens), re.IGNORECASE)


def _sentence_spans(document: str) -> Iterator[tuple[int, int, str]]:
    position = 0
    for sentence in split_sentences(document):
        start = document.find(sentence, position)
        if start < 0:
            continue
        position = start + len(sentence)
        yield start, position, sentence


def locate(sentence: str, document: str, threshold: float = DEFAULT_OVERLAP_THRESHOLD) -> dict[str, Any]:
    """Where ``sentence`` is in ``document``: span, match kind and overlap, or ``grounded: false``."""
    pattern = _loose_pattern(sentence)
    found = pattern.search(document) if pattern else None
    if found:
        return {"text": sentence, "grounded": True, "match": "exact", "start": found.start(), "end": found.end(),
                "overlap": 1.0}
    best: tuple[float, int, int] = (0.0, -1, -1)
    for start, end, candidate in _sentence_spans(document):
        overlap = source_overlap(sentence, [words(candidate)])
        if overlap > best[0]:
            best = (overlap, start, end)
    overlap, start, end = best
    if start >= 0 and overlap >= threshold:
        return {"text": sentence, "grounded": True, "match": "approximate", "start": start, "end": end,
                "overlap": round(overlap, 4)}
    return {"text": sentence, "grounded": False, "match": None, "start": None, "end": None,
            "overlap": round(overlap, 4)}


def explain(generated: Generated, document: str, threshold: float = DEFAULT_OVERLAP_THRESHOLD) -> dict[str, Any]:
    """The student's own rationale next to its summary, every associated sentence located or flagged."""
    rationale = generated.rationale.as_dict()
    located = [locate(s, document, threshold) for s in rationale["sentences"]]
    return {
        "summary": generated.summary,
        "finished": rationale["finished"],
        "rounds": generated.rounds,
        "aspects": rationale["aspects"],
        "sentences": located,
        "triples": rationale["triples"],
        "sub_summaries": rationale["sub_summaries"],
        "ungrounded_sentences": sum(1 for s in located if not s["grounded"]),
        "turns": [{"type": t.type, "text": t.text} for t in generated.turns],
    }
