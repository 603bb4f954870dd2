"""Both calls open with the same bytes (prefix caching), and call B never sees the gold summary."""

from __future__ import annotations

import os

import pytest

from lsr.core.errors import InputError
from lsr.mining.parse import parse_rationale
from lsr.mining.prompts import format_rationale, rationale_messages, summaries_messages

DOC = "The council approved the budget on Monday. Taxes will rise by 2%."
GOLD = "Council approves budget with a 2% tax rise."


@pytest.mark.parametrize("dataset", ["cnndm", "xsum"])
def test_document_first_and_shared_prefix(dataset):
    a = rationale_messages(DOC, GOLD, dataset)
    b = summaries_messages(DOC, "some rationale", dataset)
    assert a[0] == b[0] and a[0]["role"] == "system"
    prefix = os.path.commonprefix([a[1]["content"], b[1]["content"]])
    assert prefix.startswith("Article:\n" + DOC)
    assert GOLD in a[1]["content"] and GOLD not in b[1]["content"]


def test_datasets_ask_for_their_own_order():
    assert "aspect | associated sentence | <subject" in rationale_messages(DOC, GOLD, "cnndm")[1]["content"]
    assert "<subject # relation # object> | associated sentence | aspect" in rationale_messages(DOC, GOLD, "xsum")[1][
        "content"
    ]
    assert "sub-summar" not in summaries_messages(DOC, "r", "xsum")[1]["content"].lower()
    with pytest.raises(InputError):
        rationale_messages(DOC, GOLD, "cnn")


@pytest.mark.parametrize("dataset", ["cnndm", "xsum"])
def test_canonical_rationale_parses_back(dataset):
    triples = [[("council", "approved", "budget")]]
    text = format_rationale(["Budget"], ["The council approved the budget."], triples, dataset)
    parsed = parse_rationale(text, dataset)
    assert (parsed.aspects, parsed.sentences, parsed.triples) == (
        ["Budget"],
        ["The council approved the budget."],
        [[("council", "approved", "budget")]],
    )
