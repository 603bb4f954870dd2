"""One test per rule of parse_summaries' rule table (lsr/mining/parse.py, ``_SUMMARY_RULES``)."""

from __future__ import annotations

import pytest

from lsr.mining import parse
from lsr.mining.parse import ParseError, parse_summaries


def test_the_rule_table_order():
    # Order matters: a note must end the total before it is read as a continuation line, a total label must be
    # seen before the list rules, and loose prose takes whatever is left.
    names = [rule.__name__ for rule in parse._SUMMARY_RULES]
    assert names == [
        "_closing_note",
        "_total_label",
        "_total_continuation",
        "_labelled_sub_summary",
        "_sub_summaries_header",
        "_listed_sub_summary",
        "_inline_total",
        "_preamble",
        "_loose_prose",
    ]
    assert all(rule.__doc__ for rule in parse._SUMMARY_RULES)


def test_closing_note_ends_the_total_and_is_dropped():
    result = parse_summaries("Summary: Both teams drew.\nNote: I kept it to one sentence.", "xsum")
    assert result.total_summary == "Both teams drew."
    # After the note the total is done: a later label does not replace it.
    result = parse_summaries("Summary: First.\n(Explanation: why.)\nSummary: Second.", "xsum")
    assert result.total_summary == "First."


def test_total_label_with_the_summary_on_the_same_line():
    result = parse_summaries("Task 5: Overall summary = The storm hit Florida.", "xsum")
    assert result.total_summary == "The storm hit Florida."
    assert result.sub_summaries == []


def test_total_label_is_not_a_sub_summary_label():
    result = parse_summaries("Sub-summary: One.\nSummary: Both.", "cnndm")
    assert result.sub_summaries == ["One."]
    assert result.total_summary == "Both."


def test_total_continuation_joins_wrapped_lines():
    result = parse_summaries("### Summary\nThe storm hit\nFlorida on Monday.", "xsum")
    assert result.total_summary == "The storm hit Florida on Monday."


def test_labelled_sub_summaries_and_empty_ones_dropped():
    text = "Sub-summary 1: One.\nTask 4: sub-summary #2 - Two.\nSub-summary 3:\nSummary: Both."
    result = parse_summaries(text, "cnndm")
    assert result.sub_summaries == ["One.", "Two."]
    assert result.problems == []


@pytest.mark.parametrize("header", ["**Sub-summaries:**", "Multiple sub-summaries:", "### Multiple sub-summaries"])
def test_sub_summaries_header_is_skipped(header):
    result = parse_summaries(f"{header}\n1. One.\n2. Two.\n\nSummary: Both.", "cnndm")
    assert result.sub_summaries == ["One.", "Two."]
    assert result.total_summary == "Both."


def test_listed_lines_before_the_total_are_sub_summaries_and_after_it_are_not():
    result = parse_summaries("- One.\n- Two.\nSummary: Both.\n\n- Three.", "cnndm")
    assert result.sub_summaries == ["One.", "Two."]
    assert result.total_summary == "Both."


def test_inline_total_after_a_sentence_that_names_it():
    result = parse_summaries("1. One.\nHere is my one-sentence summary: The storm hit Florida.\nMore prose.", "cnndm")
    assert result.sub_summaries == ["One."]
    assert result.total_summary == "The storm hit Florida."


def test_preamble_is_skipped():
    result = parse_summaries("Here are the summaries:\nThe storm hit Florida.", "xsum")
    assert result.total_summary == "The storm hit Florida."


def test_loose_prose_last_paragraph_is_the_total():
    result = parse_summaries("Some thoughts on the article.\n\nThe storm hit\nFlorida.", "xsum")
    assert result.total_summary == "The storm hit Florida."
    assert result.problems == []


def test_missing_parts_are_reported_and_refusals_are_not_summaries():
    result = parse_summaries("1. One.\n\nI'm sorry, I cannot write a total summary.", "cnndm")
    assert result.sub_summaries == ["One."]
    assert result.total_summary is None
    assert [p.reason for p in result.problems] == ["no total summary (Task 5) in the output"]
    result = parse_summaries("Summary: Both.", "cnndm")
    assert [p.reason for p in result.problems] == ["no sub-summaries (Task 4) in the output"]
    with pytest.raises(ParseError):
        parse_summaries("Note: nothing here.", "cnndm")
