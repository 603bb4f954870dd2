"""The parser recovers every LLM-output fixture and the wider family of formats real models write."""

from __future__ import annotations

import json
import re

import pytest

from lsr.mining.parse import ParseError, parse_rationale, parse_summaries, parse_triples
from tests.helpers.paths import TEST_DATA

FIXTURES = [json.loads(line) for line in (TEST_DATA / "llm_outputs_dev.jsonl").read_text().splitlines() if line.strip()]


def _norm(value):
    if isinstance(value, str):
        return re.sub(r"^[-*\d.\s]+|\*\*", "", value).strip()
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", FIXTURES, ids=[c["case"] for c in FIXTURES])
def test_recovers_every_dev_fixture(case):
    parse = parse_rationale if case["kind"] == "rationale" else parse_summaries
    if case["expect"] is None:
        with pytest.raises(ParseError):
            parse(case["output"], case["dataset"])
        return
    result = parse(case["output"], case["dataset"])
    if case["kind"] == "rationale":
        got = {"aspects": result.aspects, "sentences": result.sentences, "triples": result.triples}
    else:
        got = {"sub_summaries": result.sub_summaries, "total_summary": result.total_summary}
    assert _norm(got) == _norm(case["expect"])
    if "expect_problems" in case:
        assert len(result.problems) == case["expect_problems"]
        assert all(p.line and p.reason for p in result.problems)


def test_crlf_labels_per_field_and_notes():
    text = (
        "Sure! Here are the rationales.\r\n\r\n"
        "Aspect: Match result\r\nAssociated sentence: Arsenal beat Liverpool 4-1.\r\n"
        "Triples: (Arsenal # beat # Liverpool); {Arsenal # scored # four goals}\r\n\r\n"
        "**Aspect:** League table\r\n**Sentence:** The win lifts Arsenal to second.\r\n"
        "**Triples:** <win # lifts # Arsenal>\r\n\r\nNote: I used the article only."
    )
    result = parse_rationale(text, "cnndm")
    assert result.aspects == ["Match result", "League table"]
    assert result.sentences == ["Arsenal beat Liverpool 4-1.", "The win lifts Arsenal to second."]
    assert result.triples[0] == [("Arsenal", "beat", "Liverpool"), ("Arsenal", "scored", "four goals")]
    assert result.problems == []


def test_markdown_table_and_labelled_fields_on_one_line():
    text = (
        "| Aspect | Associated sentence | Triples |\n|---|---|---|\n"
        "| Storm | The storm hit Florida on Monday. | <storm # hit # Florida> |\n"
        "Sentence: Power was cut to 1m homes. | Aspect: Power cuts | Triples: [power # was cut to # 1m homes]"
    )
    result = parse_rationale(text, "cnndm")
    assert result.aspects == ["Storm", "Power cuts"]
    assert result.sentences[1] == "Power was cut to 1m homes."


def test_xsum_reversed_order_and_brackets_inside_fields():
    text = "1) [Dani Alves (left) # is linked with # PSG], <CNN)Recently # rose # 5%> | Alves (left) may go. | Transfer"
    result = parse_rationale(text, "xsum")
    assert result.aspects == ["Transfer"]
    assert result.triples == [[("Dani Alves (left)", "is linked with", "PSG"), ("CNN)Recently", "rose", "5%")]]


def test_a_line_with_a_broken_triple_is_kept_and_the_triple_reported():
    result = parse_rationale("Deal | He signed. | <he # signed # deal>, <he # signed>", "cnndm")
    assert result.triples == [[("he", "signed", "deal")]]
    assert len(result.problems) == 1 and "subject # relation # object" in result.problems[0].reason


def test_nothing_usable_raises_with_the_reasons():
    with pytest.raises(ParseError) as err:
        parse_rationale("1. Deal | He signed.\n2. Fee | It cost 5m.", "cnndm")
    assert len(err.value.problems) == 2
    assert "no relation triples" in str(err.value)


def test_bracketless_and_comma_triples():
    assert parse_triples("A # said # X, Y and Z, B # did # C")[0] == [("A", "said", "X, Y and Z"), ("B", "did", "C")]
    assert parse_triples("(Arsenal, beat, Liverpool)")[0] == [("Arsenal", "beat", "Liverpool")]


@pytest.mark.parametrize(
    "text,subs,total",
    [
        ("**Sub-summaries:**\n* One.\n* Two.\n\n**Total summary:** Both.", ["One.", "Two."], "Both."),
        (
            "Sub-summary 1: One.\r\nSub-summary 2: Two.\r\nOverall summary: Both.\r\n\r\nNote: short.",
            ["One.", "Two."],
            "Both.",
        ),
        ("Here is the summary:\n\nScientists made a cell.", [], "Scientists made a cell."),
        (
            "Summary:\nScientists made a cell\nin a lab.\n\n(Note: one sentence.)",
            [],
            "Scientists made a cell in a lab.",
        ),
    ],
)
def test_summary_variants(text, subs, total):
    result = parse_summaries(text, "cnndm")
    assert result.sub_summaries == subs
    assert result.total_summary == total


@pytest.mark.parametrize("text", ["", "...", "I'm sorry, but I can't help with that request."])
def test_summaries_without_content_raise(text):
    with pytest.raises(ParseError):
        parse_summaries(text, "xsum")
