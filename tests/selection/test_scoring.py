"""Step 2's arithmetic: ROUGE as rouge-score computes it, Score1/Score2 as the paper prints them, and the verdicts."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from lsr.core.config import SelectionPreset, validate
from lsr.core.errors import InputError
from lsr.selection.scoring import (
    EMPTY_GENERATED_SUMMARY,
    EMPTY_RATIONALE,
    MINING_ERROR,
    SCORE_ABOVE_THRESHOLD,
    judge,
    rationale_is_empty,
    rouge_f1,
    rouge_types,
    score1,
    score2,
    score_text,
    sub_summary_text,
)


def make_rule(score: str = "score1", threshold: float = 0.85, **kwargs) -> SelectionPreset:
    """A selection rule the way a stage builds one: validated, so a bad value is one :class:`InputError`."""
    return validate(SelectionPreset, {"score": score, "threshold": threshold, **kwargs}, where="rule")

CAT_REF, CAT_GEN = "the cat sat on the mat", "the cat lay on the mat"
POLICE_REF, POLICE_GEN = "Police arrested two men on Friday.", "Two men were arrested by police on Friday."


def _reference(prediction: str, reference: str, kind: str) -> float:
    scorer = rouge_scorer.RougeScorer([kind], use_stemmer=True)
    return scorer.score(reference, prediction)[kind].fmeasure


def test_rouge_counted_by_hand_on_the_cat_pair():
    # Unigrams: ref {the x2, cat, sat, on, mat}, gen {the x2, cat, lay, on, mat}: 5 of 6 shared -> F1 5/6.
    # Bigrams: ref {the-cat, cat-sat, sat-on, on-the, the-mat}, gen {the-cat, cat-lay, lay-on, on-the, the-mat}:
    # 3 of 5 shared -> F1 3/5. LCS "the cat on the mat" = 5 tokens of 6 -> ROUGE-L F1 5/6.
    # Trigrams: only "on the mat" is shared, 1 of 4 -> ROUGE-3 F1 1/4.
    rouge = rouge_f1(CAT_GEN, CAT_REF, ("rouge1", "rouge2", "rougeL", "rouge3"))
    assert rouge == pytest.approx({"rouge1": 5 / 6, "rouge2": 3 / 5, "rougeL": 5 / 6, "rouge3": 1 / 4})
    # Score1 = 1 - R1*R2/(R1+R2) = 1 - (1/2)/(43/30) = 1 - 15/43; Score2 = 1 - (5/6 + 3/5 + 5/6)/3 = 1 - 34/45.
    assert score_text(CAT_GEN, CAT_REF, make_rule("score1")).score == pytest.approx(1 - 15 / 43)
    assert score_text(CAT_GEN, CAT_REF, make_rule("score2", 0.65)).score == pytest.approx(1 - 34 / 45)


@pytest.mark.parametrize("kind", ["rouge1", "rouge2", "rouge3", "rougeL"])
@pytest.mark.parametrize(("prediction", "reference"), [(CAT_GEN, CAT_REF), (POLICE_GEN, POLICE_REF)])
def test_rouge_equals_rouge_scores_own_stemmed_f1(prediction, reference, kind):
    assert rouge_f1(prediction, reference, (kind,))[kind] == pytest.approx(_reference(prediction, reference, kind))


def test_stemming_matches_inflected_words():
    # "arrested"/"arrested" and "Police"/"police" match after lower-casing and stemming; "were" and "by" are extra:
    # R1 precision 6/8, recall 6/6 -> F1 12/14.
    assert rouge_f1(POLICE_GEN, POLICE_REF, ("rouge1",))["rouge1"] == pytest.approx(12 / 14)
    assert rouge_f1("the runners were running", "the runner runs", ("rouge1",))["rouge1"] > 0.5


def test_score_text_uses_the_configured_third_rouge():
    for third in ("rougeL", "rouge3"):
        scored = score_text(POLICE_GEN, POLICE_REF, make_rule("score2", 0.65, third_rouge=third))
        r1, r2, rx = (_reference(POLICE_GEN, POLICE_REF, k) for k in ("rouge1", "rouge2", third))
        assert (scored.rouge1, scored.rouge2, scored.rouge_x) == pytest.approx((r1, r2, rx))
        assert scored.score == pytest.approx(1 - (r1 + r2 + rx) / 3)
    assert score_text(POLICE_GEN, POLICE_REF, make_rule("score1")).rouge_x is None


def test_score1_and_score2_are_losses_in_fraction_units():
    assert score1(1.0, 1.0) == pytest.approx(0.5)  # a perfect match: Score1's floor is 0.5, not 0
    assert score1(0.0, 0.0) == 1.0  # defined as the worst where the ratio is 0/0
    assert score1(0.5, 0.0) == 1.0
    assert score1(0.6, 0.3) == pytest.approx(1 - 0.18 / 0.9)
    assert score2(1.0, 1.0, 1.0) == 0.0
    assert score2(0.0, 0.0, 0.0) == 1.0
    assert score2(0.6, 0.3, 0.45) == pytest.approx(0.55)


def _row(**overrides) -> dict:
    row = {
        "id": "x",
        "summary": CAT_REF,
        "aspects": ["animals"],
        "sentences": ["The cat sat on the mat."],
        "triples": [[{"subject": "cat", "relation": "sat on", "object": "mat"}]],
        "sub_summaries": [CAT_GEN],
        "total_summary": CAT_GEN,
        "error": None,
    }
    row.update(overrides)
    return row


def test_a_good_row_is_kept_with_its_figures():
    verdict = judge(_row(), make_rule("score1", 0.85))
    assert verdict.kept and verdict.reject_reason is None
    assert verdict.scored.score == pytest.approx(1 - 15 / 43)


def test_threshold_is_inclusive_and_lower_is_better():
    exact = 1 - 15 / 43
    assert judge(_row(), make_rule("score1", exact)).kept
    below = judge(_row(), make_rule("score1", exact - 1e-6))
    assert not below.kept and below.reject_reason == SCORE_ABOVE_THRESHOLD
    assert below.scored.score == pytest.approx(exact)  # a rejected-by-score row keeps its figures


def test_a_row_with_a_mining_error_is_rejected_with_that_reason_even_if_it_would_score_well():
    verdict = judge(_row(error="HTTP 500 from the teacher"), make_rule("score1", 0.85))
    assert (verdict.kept, verdict.reject_reason, verdict.scored) == (False, MINING_ERROR, None)
    assert judge(_row(error="   "), make_rule()).kept  # a blank error string is no error


def test_empty_rationale_and_empty_summary_reasons():
    empty = _row(aspects=[], sentences=[" "], triples=[[]])
    assert judge(empty, make_rule()).reject_reason == EMPTY_RATIONALE
    assert judge(_row(aspects=None, sentences=None, triples=None), make_rule()).reject_reason == EMPTY_RATIONALE
    assert not rationale_is_empty([], [], [[{"subject": "cat", "relation": "", "object": ""}]])
    assert judge(_row(sub_summaries=["", "  "]), make_rule(score_on="sub")).reject_reason == EMPTY_GENERATED_SUMMARY
    assert judge(_row(sub_summaries=[]), make_rule(score_on="total")).kept
    assert judge(_row(total_summary=None), make_rule(score_on="total")).reject_reason == EMPTY_GENERATED_SUMMARY
    assert judge(_row(total_summary=""), make_rule(score_on="both")).reject_reason == EMPTY_GENERATED_SUMMARY


def test_score_on_picks_the_text_and_both_takes_the_worse():
    good, bad = CAT_REF, "a dog barked at the postman"
    row = _row(sub_summaries=[good], total_summary=bad)
    rule = {on: make_rule("score1", 0.85, score_on=on) for on in ("sub", "total", "both")}
    sub, total, both = (judge(row, rule[on]) for on in ("sub", "total", "both"))
    assert sub.kept and sub.scored.score == pytest.approx(0.5)
    assert not total.kept
    assert not both.kept and both.scored == total.scored  # the worse text's figures, not a mean
    flipped = judge(_row(sub_summaries=[bad], total_summary=good), rule["both"])
    assert flipped.scored == judge(_row(sub_summaries=[bad]), rule["sub"]).scored


def test_sub_summaries_are_scored_as_one_text_a_line():
    assert sub_summary_text([" one. ", "", "two."]) == "one.\ntwo."
    lines = ["The cat sat.", "It was on the mat."]
    rule = make_rule("score1", 0.85, score_on="sub")
    assert judge(_row(sub_summaries=lines), rule).scored == score_text("\n".join(lines), CAT_REF, rule)


@pytest.mark.parametrize(
    "kwargs",
    [{"threshold": 85}, {"threshold": -0.1}, {"score": "score3"}, {"third_rouge": "rouge4"}, {"score_on": "all"}],
)
def test_rule_refuses_bad_settings_with_a_clear_message(kwargs):
    with pytest.raises(InputError):
        make_rule(**kwargs)


def test_score1_rule_skips_the_third_rouge_and_score2_needs_it():
    assert rouge_types(make_rule("score1")) == ("rouge1", "rouge2")
    assert rouge_types(make_rule("score2", 0.65, third_rouge="rouge3")) == ("rouge1", "rouge2", "rouge3")
