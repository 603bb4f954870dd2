"""ROUGE-1/2/Lsum F1 per example (rouge-score, stemming), as training's validation and evaluation both score it.

It sits below the stages so that training's validation and ``lsr evaluate`` report the same figure for the same
summaries without one stage importing the other. ROUGE-Lsum scores summary-level LCS over sentences, which
rouge-score finds by newlines; both sides are therefore split into one sentence a line first
by the splitter every stage uses (:func:`lsr.data.sentences.split_sentences`). ROUGE-1/2 do not depend on the
split. Scores are in [0, 1]; tables print them x100 like the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

from lsr.data.sentences import split_sentences

ROUGE_KEYS = ("rouge1", "rouge2", "rougeLsum")


def _for_lsum(text: str) -> str:
    return "\n".join(split_sentences(text))


_SCORER = None


def _rouge_scorer():
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)
    return _SCORER


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """Per example F1 of ROUGE-1, ROUGE-2 and ROUGE-Lsum, in [0, 1]."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    scorer = _rouge_scorer()
    rows = []
    for prediction, reference in zip(predictions, references, strict=True):
        # rouge-score's signature is score(target, prediction).
        scores = scorer.score(_for_lsum(reference), _for_lsum(prediction))
        rows.append({key: scores[key].fmeasure for key in ROUGE_KEYS})
    return rows


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The average of every key over ``rows`` (0.0 for no rows, so an empty split reads as zero, not NaN)."""
    if not rows:
        return {}
    return {key: sum(row[key] for row in rows) / len(rows) for key in rows[0]}
