"""Step 2's arithmetic (docs/paper.md#selection): ROUGE-N of a mined summary against the gold one, Score1 and Score2.

Everything here is pure Python over plain values, so the Ray pass in :mod:`lsr.selection.job` is a thin loop and
the formulas can be checked by hand. Units are the paper's Eq. 6: ROUGE in [0, 1], never percentages; the
authors' code compares percentages with 0.85 / 0.65 and keeps the worst rows, which these functions avoid by
construction (a score is a loss in [0, 1], an example is kept when its score is <= the threshold).

ROUGE is the F1 (``fmeasure``) of ``rouge-score`` with Porter stemming: the paper's Eq. 6 is written as a
recall, but the generated sub-summaries are much longer than a gold highlight, and recall alone would reward
a teacher that copies the document; F1 penalises that padding, and it is the figure every summarisation
table (including the paper's Table 2) reports.

``rouge-score`` are imported inside the functions that use them: the ``lsr`` command imports this module at start-
up, before it knows which of them a command needs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lsr.core.config import SelectionPreset

#: Why a row was rejected; a fixed vocabulary so the report can count them (checked in this order).
MINING_ERROR = "mining_error"  # the miner set ``error``; the text stays in that column
EMPTY_RATIONALE = "empty_rationale"  # no aspect, no associated sentence and no triple at all
EMPTY_GENERATED_SUMMARY = "empty_generated_summary"  # the text to score (see ``score_on``) is blank
SCORE_ABOVE_THRESHOLD = "score_above_threshold"  # scored, and the loss is worse than the threshold
REJECT_REASONS = (MINING_ERROR, EMPTY_RATIONALE, EMPTY_GENERATED_SUMMARY, SCORE_ABOVE_THRESHOLD)


def rouge_types(rule: SelectionPreset) -> tuple[str, ...]:
    """ROUGE variants the rule's score needs; Score1 skips the third (ROUGE-L is the costly one)."""
    if rule.score == "score1":
        return ("rouge1", "rouge2")
    return ("rouge1", "rouge2", rule.third_rouge)


@dataclass(frozen=True)
class Scored:
    """The figures of one scored text; ``rouge_x`` is ``None`` under Score1, which has no third term."""

    rouge1: float
    rouge2: float
    rouge_x: float | None
    score: float


@dataclass(frozen=True)
class Verdict:
    """One row's outcome: its figures (``None`` when it never got to scoring) and, if rejected, why."""

    scored: Scored | None
    kept: bool
    reject_reason: str | None


def score1(r1: float, r2: float) -> float:
    """Score1 = 1 - R1*R2/(R1+R2); 1 (the worst) when both are 0, where the ratio is undefined.

    Its range is [0.5, 1]: a perfect match scores 0.5, so the paper's 0.85 keeps rows whose harmonic mean of
    ROUGE-1 and ROUGE-2 is at least 0.3.
    """
    total = r1 + r2
    if total <= 0.0:
        return 1.0
    return 1.0 - r1 * r2 / total


def score2(r1: float, r2: float, rx: float) -> float:
    """Score2 = 1 - (R1+R2+RX)/3, RX being ROUGE-L or ROUGE-3 (see :data:`THIRD_ROUGE`)."""
    return 1.0 - (r1 + r2 + rx) / 3.0


@functools.lru_cache(maxsize=8)
def _scorer(rouge_types: tuple[str, ...]):
    # Building a scorer loads the Porter stemmer; cache one per process (Ray workers reuse theirs across batches).
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=True)


def rouge_f1(prediction: str, reference: str, rouge_types: Sequence[str]) -> dict[str, float]:
    """ROUGE F1 of ``prediction`` against ``reference`` for each type, stemmed, in [0, 1]."""
    scores = _scorer(tuple(rouge_types)).score(reference, prediction)
    return {name: float(scores[name].fmeasure) for name in rouge_types}


def score_text(prediction: str, reference: str, rule: SelectionPreset) -> Scored:
    """ROUGE figures and the rule's score of one generated text against the gold summary."""
    rouge = rouge_f1(prediction, reference, rouge_types(rule))
    r1, r2 = rouge["rouge1"], rouge["rouge2"]
    if rule.score == "score1":
        return Scored(r1, r2, None, score1(r1, r2))
    rx = rouge[rule.third_rouge]
    return Scored(r1, r2, rx, score2(r1, r2, rx))


def sub_summary_text(sub_summaries: Sequence[str] | None) -> str:
    """The sub-summaries as one text, one per line (the way CNN/DM highlights are written)."""
    return "\n".join(s.strip() for s in (sub_summaries or []) if s and s.strip())


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, Mapping):
        return all(_blank(v) for v in value.values())
    if isinstance(value, Sequence):
        return all(_blank(v) for v in value)
    return isinstance(value, float) and math.isnan(value)


def rationale_is_empty(aspects: object, sentences: object, triples: object) -> bool:
    """True when the rationale carries nothing at all: every aspect, sentence and triple field is blank.

    A partial rationale (say, no triples) is kept: the student still has the other views to align to, and the
    miner has recorded what it could not parse in ``problems``.
    """
    return _blank(aspects) and _blank(sentences) and _blank(triples)


def judge(row: Mapping[str, object], rule: SelectionPreset) -> Verdict:
    """Decide one mined row: the first rejection reason that applies (see :data:`REJECT_REASONS`), else its score.

    ``score_on="both"`` scores the sub-summaries and the total summary separately and keeps the *worse* of the
    two (the higher loss, with that text's ROUGE figures): an example is kept only when both of its generated
    texts would pass on their own, and a blank one of the two rejects it. The worse rather than the mean,
    because a mean lets a good total summary hide sub-summaries that contradict the gold one.
    """
    error = row.get("error")
    if isinstance(error, str) and error.strip():
        return Verdict(None, False, MINING_ERROR)
    if rationale_is_empty(row.get("aspects"), row.get("sentences"), row.get("triples")):
        return Verdict(None, False, EMPTY_RATIONALE)

    texts = []
    if rule.score_on in ("sub", "both"):
        texts.append(sub_summary_text(row.get("sub_summaries")))  # type: ignore[arg-type]
    if rule.score_on in ("total", "both"):
        texts.append(str(row.get("total_summary") or "").strip())
    if any(not text for text in texts):
        return Verdict(None, False, EMPTY_GENERATED_SUMMARY)

    reference = str(row.get("summary") or "")
    scored = max((score_text(text, reference, rule) for text in texts), key=lambda s: s.score)
    if scored.score <= rule.threshold:
        return Verdict(scored, True, None)
    return Verdict(scored, False, SCORE_ABOVE_THRESHOLD)
