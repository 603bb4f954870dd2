"""The vLLM chat client against a real vLLM engine on the CPU (the tiny random Llama): one engine, in this process.

What a mining replica does with its engine, call by call: the paper's free-text prompts get replies a random model
cannot shape (cut at ``max_tokens``: ``*_truncated``, not ``*_unparsable``); ``--structured-output`` holds the same
model to the JSON schema, so every reply parses, with one rationale line per gold summary sentence; call B repeats
call A's document as its prefix, and the engine serves that prefix from its cache.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from lsr.data.sentences import split_sentences
from lsr.mining.document_stage import mine_document
from lsr.mining.engines import VllmEngine
from lsr.mining.rows import MineSettings, after_rationale, rationale_request, summaries_request

pytestmark = pytest.mark.vllm

#: Small budgets keep the random model's replies (it writes to the limit) fast on two cores.
BUDGET = {"rationale_max_tokens": 512, "summaries_max_tokens": 256}


@pytest.fixture(scope="module")
def run():
    """One event loop for the module, as a replica's actor has: the engine's output handler lives on it."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


@pytest.fixture(scope="module")
def client(tiny_llama):
    engine = VllmEngine(model=str(tiny_llama), device="cpu", max_model_len=4096, kv_cache_gib=0.5, max_num_seqs=16)
    chat = engine.chat_client()
    chat.start()
    yield chat
    chat.close()


@pytest.fixture(scope="module")
def documents(cnndm_path):
    rows = [json.loads(line) for line in cnndm_path.read_text().splitlines()[:4]]
    return [{"id": r["id"], "document": r["document"], "summary": r["summary"],
             "prompt_document": " ".join(r["document"].split()[:300]), "truncated": True} for r in rows]


def _settings(structured: bool) -> MineSettings:
    return MineSettings(dataset="cnndm", engine="vllm", model="tiny", structured=structured,
                        json_chars_per_token=1.0, **BUDGET)


async def _mine_all(client, documents, settings):
    return await asyncio.gather(*(mine_document(row, client, settings) for row in documents))


def test_free_text_replies_of_a_random_model_are_cut_and_said_to_be(client, documents, run):
    rows = run(_mine_all(client, documents, _settings(structured=False)))
    assert [r["error"].split(":")[0] for r in rows] == ["rationale_truncated"] * len(rows)
    assert all(r["completion_tokens"] == BUDGET["rationale_max_tokens"] for r in rows)


def test_structured_output_makes_every_reply_parse_with_a_line_per_summary_sentence(client, documents, run):
    rows = run(_mine_all(client, documents, _settings(structured=True)))
    assert [r["error"] for r in rows] == [None] * len(rows)
    for row in rows:
        assert len(row["aspects"]) == len(row["sentences"]) == len(split_sentences(row["summary"]))
        assert all(1 <= len(line) <= 3 for line in row["triples"])
        assert len(row["sub_summaries"]) == len(row["aspects"]) and row["total_summary"]
        json.loads(row["raw_rationale"], strict=False)  # the reply itself is the JSON object


def test_call_b_is_served_the_documents_prefix_from_call_a(client, documents, run):
    settings = _settings(structured=True)
    row = documents[0]

    async def both_calls():
        result_a = await client.chat(rationale_request(row, settings))
        result_b = await client.chat(summaries_request(after_rationale(row, result_a, settings), settings))
        return result_a, result_b

    result_a, result_b = run(both_calls())
    assert result_b.error is None and result_b.prompt_tokens > 0
    # The system message and the article open both prompts: at least those tokens come from the cache.
    assert result_b.cached_prompt_tokens >= 0.5 * result_a.prompt_tokens
