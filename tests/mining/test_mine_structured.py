"""--structured-output without an engine: the schemas are bounded by the calls' budgets, the JSON parser reads what
grammars emit into the free-text parser's shapes, a reply cut at max_tokens is truncated (not unparsable), and the
option reaches the rows, the prompts and the run's identity from the flags and from --config."""

from __future__ import annotations

import json

import pytest

from lsr.core.cli_config import config_from_args
from lsr.core.errors import InputError
from lsr.mining.engines.base import CallResult
from lsr.mining.failures import UNPARSABLE, failure_kind
from lsr.mining.parse import ParseError
from lsr.mining.rows import MineSettings, after_rationale, final_row, rationale_request, summaries_request
from lsr.mining.structured import (
    _skeleton,
    parse_rationale_json,
    parse_summaries_json,
    rationale_schema,
    summaries_schema,
)

ROW = {"id": "a", "document": "The cat sat on the mat. The dog ran.", "summary": "A cat sat. A dog ran.",
       "prompt_document": "The cat sat on the mat. The dog ran.", "truncated": False}
SETTINGS = MineSettings(dataset="cnndm", engine="vllm", model="m", rationale_max_tokens=1024,
                        summaries_max_tokens=512, structured=True, json_chars_per_token=3.0)
RATIONALE = {"rationales": [
    {"aspect": "Cat", "sentence": "The cat sat on the mat.", "triples": [{"subject": "cat", "relation": "sat on",
                                                                           "object": "mat"}]},
    {"aspect": "Dog", "sentence": "The dog ran.", "triples": [{"subject": "dog", "relation": "ran", "object": "x"}]},
]}


def _longest_reply_tokens(schema: dict, per_token: float) -> float:
    """Tokens of the longest reply the schema admits: its skeleton at 1.5 characters a token plus every string at
    its bound at ``per_token``."""
    def strings(node):
        if node["type"] == "string":
            return node["maxLength"]
        if node["type"] == "array":
            return node["maxItems"] * strings(node["items"])
        return sum(strings(child) for child in node["properties"].values())
    return len(_skeleton(schema)) / 1.5 + strings(schema) / per_token


@pytest.mark.parametrize("lines", [1, 2, 4, 8])
@pytest.mark.parametrize(("max_tokens", "per_token"), [(1024, 3.0), (1024, 1.0), (2048, 3.0)])
def test_the_longest_reply_a_schema_admits_fits_its_budget(lines, max_tokens, per_token):
    """At the assumed characters per token (and the skeleton at 1.5), every reply the grammar allows ends before
    max_tokens (CNN/DM's budgets and above); lines get fewer triples rather than overflow. (Below, the floors of 8
    characters can overflow a summary of many sentences: such a reply is cut and reported as truncated.)"""
    schema = rationale_schema("cnndm", lines, max_tokens, per_token)
    items = schema["properties"]["rationales"]
    assert items["minItems"] == items["maxItems"] == lines  # one rationale per gold summary sentence
    assert 1 <= items["items"]["properties"]["triples"]["maxItems"] <= 3
    assert _longest_reply_tokens(schema, per_token) <= max_tokens
    for dataset in ("cnndm", "xsum"):
        assert _longest_reply_tokens(summaries_schema(dataset, lines, max_tokens // 2, per_token), per_token) \
            <= max_tokens // 2
    assert _longest_reply_tokens(rationale_schema("xsum", 1, max_tokens, per_token), per_token) <= max_tokens
    assert list(rationale_schema("xsum", 1, 512, 3.0)["properties"]) == ["triples", "sentence", "aspect"]  # reverse


def test_json_replies_parse_into_the_free_text_shapes_and_bad_entries_are_kept_as_problems():
    parsed = parse_rationale_json(json.dumps(RATIONALE), "cnndm")
    assert parsed.aspects == ["Cat", "Dog"] and parsed.triples[0] == [("cat", "sat on", "mat")]
    broken = {"rationales": [RATIONALE["rationales"][0], {"aspect": "", "sentence": "s", "triples": []}]}
    parsed = parse_rationale_json(json.dumps(broken), "cnndm")
    assert parsed.aspects == ["Cat"] and "no aspect, no triples" in str(parsed.problems[0])
    # A grammar can let a raw newline into a string: strict JSON refuses it, the parser reads it.
    raw = '{"total_summary":"one\nline","sub_summaries":["a","b"]}'
    assert parse_summaries_json(raw, "cnndm").total_summary == "one line"
    xsum = parse_rationale_json('{"triples":[{"subject":"s","relation":"r","object":"o"}],"sentence":"x",'
                                '"aspect":"y"}', "xsum")
    assert (xsum.aspects, xsum.sentences) == (["y"], ["x"])
    with pytest.raises(ParseError, match="not a JSON object"):
        parse_rationale_json('{"rationales":[{"aspect":"cut', "cnndm")


def test_a_reply_cut_at_max_tokens_is_truncated_and_the_requests_carry_their_schemas():
    request = rationale_request(ROW, SETTINGS)
    assert request.schema["properties"]["rationales"]["maxItems"] == 2 and "JSON" in request.messages[1]["content"]
    cut = after_rationale(ROW, CallResult('{"rationales":[{"aspect":"Ca', 10, 1024, None, "length"), SETTINGS)
    assert cut["a_error"].startswith("rationale_truncated: the reply reached max_tokens (1024)")
    assert failure_kind(cut["a_error"]) == UNPARSABLE  # retried with --retry-unparsable, like a parse failure
    ended = after_rationale(ROW, CallResult(json.dumps(RATIONALE), 10, 50, None, "stop", attempts=2), SETTINGS)
    follow_up = summaries_request(ended, SETTINGS)
    assert follow_up.schema["properties"]["sub_summaries"]["maxItems"] == 2
    row = final_row(ended, CallResult('{"sub_summaries":["a","b"],"total_summary":"t"}', 5, 5, None, "stop"),
                    SETTINGS)
    assert row["error"] is None and row["sub_summaries"] == ["a", "b"] and row["requests"] == 3
    free = MineSettings(dataset="cnndm", engine="vllm", model="m", rationale_max_tokens=8, summaries_max_tokens=8)
    assert rationale_request(ROW, free).schema is None
    noise = after_rationale(ROW, CallResult("noise noise", 10, 8, None, "length"), free)
    assert noise["a_error"].startswith("rationale_truncated")
    assert after_rationale(ROW, CallResult("noise", 10, 3, None, "stop"), free)["a_error"].startswith(
        "rationale_unparsable")


def _mine_config(tmp_path, *flags: str, yaml: str | None = None):
    import argparse

    from lsr.cli.commands.mine import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"), "--dataset", "cnndm", *flags]
    if yaml is not None:
        (tmp_path / "c.yaml").write_text(yaml)
        argv += ["--config", str(tmp_path / "c.yaml")]
    return config_from_args(parser.parse_args(argv))


def test_engine_arguments_and_structured_output_come_from_flags_and_from_the_config_file(tmp_path):
    config = _mine_config(tmp_path, "--engine", "vllm", "--model", "m", "--kv-cache-gib", "3", yaml=(
        "mining:\n  structured_output: true\n  engine:\n    device: cpu\n    dtype: float32\n    kv_cache_gib: 1\n"
        "    extra_engine_kwargs: {swap_space: 0}\n"))
    assert config.mining.structured_output and config.engine.device == "cpu" and config.engine.dtype == "float32"
    assert config.engine.kv_cache_gib == 3  # the flag wins over the file
    assert config.engine.engine_args("cpu")["swap_space"] == 0
    with pytest.raises(InputError, match="an option of --engine vllm, not of --engine http"):
        _mine_config(tmp_path, "--engine", "http", "--url", "http://h/v1", "--model", "m",
                     yaml="mining:\n  engine:\n    dtype: float32\n")
    with pytest.raises(InputError, match="--structured-output"):
        _mine_config(tmp_path, "--engine", "oracle", "--structured-output")
