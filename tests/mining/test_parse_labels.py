"""Labelled fields: a label is stripped from every field of a rationale line, whatever words it uses."""

from __future__ import annotations

import itertools

import pytest

from lsr.mining.parse import parse_rationale

ASPECT, SENTENCE, TRIPLES = "Storm damage", "The storm hit Florida on Monday.", "<storm # hit # Florida>"
EXPECTED = ([ASPECT], [SENTENCE], [[("storm", "hit", "Florida")]])

ASPECT_LABELS = ["Aspect", "Essential aspect", "Key aspect", "EA", "Essential Aspect (EA)", "Aspect 1", "Topic"]
SENTENCE_LABELS = ["Sentence", "Associated sentence", "Key sentence", "Evidence", "AS", "Associated Sentence (AS)"]
TRIPLE_LABELS = ["Triples", "Triple(s)", "Relations", "TER", "Relation triples", "Triple Extraction Result (TER)"]


def _parsed(text: str, dataset: str = "cnndm"):
    result = parse_rationale(text, dataset)
    assert result.problems == [], result.problems
    return result.aspects, result.sentences, result.triples


def _decorate(label: str, style: str) -> str:
    return {
        "plain": f"{label}: ",
        "upper": f"{label.upper()}: ",
        "lower": f"{label.lower()}: ",
        "bold": f"**{label}:** ",
        "bold-outside": f"**{label}**: ",
        "underscore": f"__{label}__: ",
        "dash": f"{label} - ",
    }[style]


@pytest.mark.parametrize("aspect_label,sentence_label,triple_label", list(zip(
    ASPECT_LABELS, itertools.islice(itertools.cycle(SENTENCE_LABELS), len(ASPECT_LABELS)),
    itertools.islice(itertools.cycle(TRIPLE_LABELS), len(ASPECT_LABELS)), strict=True)))
@pytest.mark.parametrize("style", ["plain", "upper", "lower", "bold", "bold-outside", "underscore", "dash"])
def test_every_field_loses_its_label_in_cnndm_order(aspect_label, sentence_label, triple_label, style):
    line = " | ".join([
        _decorate(aspect_label, style) + ASPECT,
        _decorate(sentence_label, style) + SENTENCE,
        _decorate(triple_label, style) + TRIPLES,
    ])
    assert _parsed(line) == EXPECTED


@pytest.mark.parametrize("triple_label", TRIPLE_LABELS)
def test_every_field_loses_its_label_in_xsum_order(triple_label):
    line = f"{triple_label}: {TRIPLES} | Associated sentence: {SENTENCE} | Essential aspect: {ASPECT}"
    assert _parsed(line, "xsum") == EXPECTED


def test_labels_in_any_field_order_are_assigned_by_label():
    line = f"AS: {SENTENCE} | TER: {TRIPLES} | EA: {ASPECT}"
    assert _parsed(line) == EXPECTED


def test_an_unknown_label_goes_when_the_other_fields_are_labelled():
    line = f"Aspect: {ASPECT} | Quote from article: {SENTENCE} | Triples: {TRIPLES}"
    assert _parsed(line) == EXPECTED


def test_a_colon_in_an_unlabelled_line_is_text_not_a_label():
    aspects, sentences, _ = _parsed("Easter: travel chaos | Police said: roads are closed. | <roads # are # closed>")
    assert aspects == ["Easter: travel chaos"]
    assert sentences == ["Police said: roads are closed."]


def test_a_colon_inside_a_labelled_field_stays():
    _, sentences, _ = _parsed(f"Aspect: {ASPECT} | Sentence: Police said: roads are closed. | Triples: {TRIPLES}")
    assert sentences == ["Police said: roads are closed."]


def test_a_table_header_of_abbreviations_is_not_a_problem():
    result = parse_rationale(f"| EA | AS | TER |\n|---|---|---|\n| {ASPECT} | {SENTENCE} | {TRIPLES} |", "cnndm")
    assert (result.aspects, result.sentences, result.triples) == EXPECTED
    assert result.problems == [] and result.ignored == ["| EA | AS | TER |"]


def test_labelled_lines_of_a_multi_line_record_use_the_same_labels():
    text = f"**EA:** {ASPECT}\n**Key sentence:** {SENTENCE}\n**Triple(s):** {TRIPLES}"
    assert _parsed(text) == EXPECTED
