"""Engine construction without a GPU (vLLM), the HTTP session's retries, and the token budget."""

from __future__ import annotations

import asyncio
import json

import pytest
from openai_stub_server import OpenAIStub, Plan, doc_key

from lsr.errors import InputError
from lsr.mining.budget import TokenBudget
from lsr.mining.engines import ERROR_COLUMN, HttpEngine, VllmEngine, build_call_processor
from lsr.mining.engines.http import http_reply
from lsr.mining.http_session import ERROR_KEY, ResilientSession, backoff_seconds


def test_vllm_processor_structure(ray_local, tmp_path):
    config = VllmEngine(
        model=str(tmp_path),
        tensor_parallel_size=4,
        pipeline_parallel_size=2,
        replicas=(2, 6),
        max_model_len=16384,
        batch_size=48,
    )
    processor = build_call_processor(config, lambda row: ([{"role": "user", "content": "x"}], 8, 0.0), lambda r, x: r)
    assert processor.list_stage_names() == ["ChatTemplateStage", "TokenizeStage", "vLLMEngineStage", "DetokenizeStage"]
    engine = processor.get_stage_by_name("vLLMEngineStage")
    kwargs = engine.fn_constructor_kwargs
    assert kwargs["engine_kwargs"]["tensor_parallel_size"] == 4
    assert kwargs["engine_kwargs"]["pipeline_parallel_size"] == 2
    assert kwargs["engine_kwargs"]["enable_prefix_caching"] is True
    assert kwargs["engine_kwargs"]["max_model_len"] == 16384
    assert kwargs["engine_kwargs"]["distributed_executor_backend"] == "ray"  # a replica spans 8 GPUs
    assert kwargs["should_continue_on_error"] is True and kwargs["batch_size"] == 48
    placement = engine.map_batches_kwargs["ray_remote_args_fn"]  # ray.data.llm schedules the replica's bundles
    assert placement.args[0] == 8 and placement.args[2]["bundles"] == [{"GPU": 1, "CPU": 1}] * 8
    compute = engine.map_batches_kwargs["compute"]
    assert (compute.min_size, compute.max_size) == (2, 6)
    with pytest.raises(InputError):
        VllmEngine(model="m", replicas=(3, 2))


def test_http_config_validates_and_reads_replies():
    with pytest.raises(InputError):
        HttpEngine(url="localhost:8000", model="m")
    assert HttpEngine(url="http://h:8000/v1", model="m").endpoint == "http://h:8000/v1/chat/completions"
    ok = http_reply({"http_response": {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3}}})
    assert (ok.text, ok.prompt_tokens, ok.error) == ("hi", 3, None)
    assert http_reply({"http_response": {ERROR_KEY: "HTTP 500"}, ERROR_COLUMN: ""}).error == "http: HTTP 500"
    assert "without choices" in http_reply({"http_response": {"error": {"message": "bad"}}}).error


def test_session_retries_then_reports_without_the_key():
    async def post_all(url, secret):
        async with ResilientSession(max_retries=2, base_wait_s=0.01, redact_values=(secret,)) as session:
            bodies = []
            for content in ("Article:\nflaky\n\nReference summary:\ns", "Article:\ndown\n\nReference summary:\ns"):
                payload = json.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})
                pending = session.post(url, headers={"Authorization": f"Bearer {secret}"}, data=payload)
                async with await pending as reply:
                    bodies.append(await reply.json())
            return bodies

    plan = Plan(transient={doc_key("flaky"): [500, 429]}, always_500={doc_key("down")})
    with OpenAIStub("cnndm", plan=plan, api_key="sk-xyz") as stub:
        flaky, down = asyncio.run(post_all(stub.url + "/chat/completions", "sk-xyz"))
    assert "choices" not in flaky or flaky["choices"][0]["message"]["content"]
    assert down[ERROR_KEY].startswith("gave up after 3 attempts") and "sk-xyz" not in down[ERROR_KEY]
    assert [s for _, k, s in stub.requests if k == doc_key("flaky")] == [500, 429, 200]
    assert 0 < backoff_seconds(3, 1.0, 30.0) <= 4.0 and backoff_seconds(1, 1.0, 30.0, "2") == 2.0


def test_token_budget_cuts_documents_to_fit():
    budget = TokenBudget(max_model_len=3000, rationale_max_tokens=512, summaries_max_tokens=256, tokens_per_word=1.5)
    room = budget.document_budget("cnndm", "a short summary")
    document = " ".join(f"w{i}" for i in range(3000))
    cut, truncated = budget.fit(document, "cnndm", "a short summary")
    assert truncated and budget.count(cut) <= room and document.startswith(cut)
    assert budget.fit("short text", "cnndm", "s") == ("short text", False)
    with pytest.raises(InputError):
        TokenBudget(max_model_len=100, rationale_max_tokens=1, summaries_max_tokens=1)
