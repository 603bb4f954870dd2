"""The engine seam: one registry, flags generated from the engines' configs, one line for a misplaced option."""

from __future__ import annotations

import argparse

import pytest

from lsr.cli.main import build_parser, main
from lsr.core.cli_config import config_from_args
from lsr.core.errors import InputError
from lsr.mining.engines import ENGINES, HttpEngine, LlmEngine, OracleEngine, VllmEngine, by_kind

BASE = ["mine", "--input", "in.jsonl", "--output", "out", "--dataset", "cnndm"]


def _config(*flags: str):
    return config_from_args(build_parser().parse_args([*BASE, *flags]))


def test_registry_lists_every_engine_once_and_the_cli_offers_them():
    kinds = [by_kind(k).model_fields["kind"].default for k in ("vllm", "http", "oracle")]
    assert kinds == ["vllm", "http", "oracle"] and len(ENGINES) == 3
    assert by_kind("http") is HttpEngine and by_kind("oracle") is OracleEngine
    assert OracleEngine.runs_locally and not HttpEngine.runs_locally and issubclass(VllmEngine, LlmEngine)
    with pytest.raises(SystemExit):  # argparse refuses an unknown engine
        build_parser().parse_args([*BASE, "--engine", "sglang"])


def test_flags_keep_their_names_and_per_engine_defaults():
    http = _config("--engine", "http", "--url", "http://h:1/v1", "--model", "m").engine
    assert isinstance(http, HttpEngine) and http.batch_size == 16 and http.max_in_flight == 16
    assert http.base_retry_wait_s == 1.0 and http.timeout_s == 300.0 and http.api_key_env == "OPENAI_API_KEY"
    flags = ("--engine", "vllm", "--model", "m", "--replicas", "2,4", "--no-prefix-caching", "--batch-size", "8")
    vllm = _config(*flags).engine
    assert isinstance(vllm, VllmEngine) and vllm.replicas == (2, 4) and vllm.prefix_caching is False
    assert vllm.batch_size == 8 and vllm.max_model_len == 8192
    assert vllm.engine_args()["enable_prefix_caching"] is False
    config = _config("--engine", "oracle", "--rows-per-file", "8", "--limit", "3")
    assert (config.rows_per_file, config.limit, config.engine.kind) == (8, 3, "oracle")
    assert config.mining.rationale_max_tokens == 1024  # the paper's value for cnndm, filled from the preset


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--engine", "http", "--url", "http://h/v1", "--model", "m", "--tensor-parallel-size", "2"],
         "--tensor-parallel-size is an option of --engine vllm, not of --engine http"),
        (["--engine", "oracle", "--url", "http://h/v1"], "--url is an option of --engine http, not of --engine oracle"),
        (["--engine", "oracle", "--max-model-len", "4096"],
         "--max-model-len is an option of --engine vllm or http, not of --engine oracle"),
        (["--engine", "vllm", "--model", "m", "--retry-wait", "2"],
         "--retry-wait is an option of --engine http, not of --engine vllm"),
        (["--engine", "http", "--model", "m"], "--url (engine.http.url): field required"),
        (["--engine", "http", "--url", "localhost:8000", "--model", "m"], "expected an http:// or https:// URL"),
        (["--engine", "vllm", "--model", "m", "--replicas", "3,2"], "--replicas 3,2: expected 1 <= MIN <= MAX"),
        (["--engine", "vllm"], "--model (engine.vllm.model): field required"),
        (["--engine", "oracle", "--rows-per-file", "0"], "--rows-per-file (rows_per_file)"),
    ],
)
def test_a_wrong_engine_option_is_one_line_before_ray(flags, expected, capsys):
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        _config(*flags)
    assert main([*BASE, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_an_engine_built_in_code_fails_with_one_line():
    with pytest.raises(InputError, match="max_model_len"):
        HttpEngine(url="http://h/v1", model="m", max_model_len=100)
    with pytest.raises(InputError, match="model"):
        VllmEngine(model="")


def test_every_engine_option_is_reachable_from_the_command_line():
    """Each field of each engine is a flag (or deliberately kept off it), so a new engine gets its flags for free."""
    actions = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["mine"]._actions}
    for engine_cls in ENGINES:
        for name, info in engine_cls.model_fields.items():
            hidden = any(getattr(m, "cli", True) is False for m in info.metadata)
            assert name == "kind" or hidden or f"engine.{name}" in actions, (engine_cls, name)
    assert isinstance(build_parser(), argparse.ArgumentParser)


def test_the_mining_stage_holds_the_whole_in_flight_budget(monkeypatch):
    """Ray Data allows an async UDF 4 concurrent batches per task by default, which caps a stage at
    4 x batch_size documents whatever --max-in-flight says; the stage's options widen that so one task (one block
    of one budget) runs all its batches at once, and never narrow a larger setting. An actor runs two such tasks on
    two concurrency slots (a second task on one slot only queues behind the first, and the budget empties at every
    block boundary). The HTTP session has no connection cap of its own below the budget (aiohttp's default of 100
    would cap 256)."""
    import asyncio

    from ray.data._internal.planner import plan_udf_map_op

    from lsr.mining.actor_pool import widen_async_batches
    from lsr.mining.http_session import ResilientSession

    monkeypatch.setattr(plan_udf_map_op, "DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY", 4)
    engine = HttpEngine(url="http://h/v1", model="m", max_in_flight=256, batch_size=16)
    options = engine.stage_options()
    pool = options["compute"]
    assert engine.rows_in_flight == 256
    assert pool.max_tasks_in_flight_per_actor == 2 and pool.max_concurrent_calls_per_actor == 2
    assert plan_udf_map_op.DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY * engine.batch_size >= engine.rows_in_flight
    widen_async_batches(2)
    assert plan_udf_map_op.DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY == 16

    async def connector_limit():
        async with ResilientSession(max_in_flight=256) as session:
            return session._session.connector.limit

    assert asyncio.run(connector_limit()) == 0  # unlimited: the session's own slots bound the requests
