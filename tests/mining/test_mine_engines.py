"""Engine construction without a GPU (vLLM), the HTTP session's retries, and the token budget."""

from __future__ import annotations

import asyncio
import json

import pytest

from lsr.core.errors import InputError
from lsr.mining.budget import TokenBudget
from lsr.mining.engines import HttpEngine, VllmEngine
from lsr.mining.engines.http import http_reply
from lsr.mining.http_session import ERROR_KEY, ResilientSession, backoff_seconds
from lsr.mining.prompts import format_rationale
from lsr.mining.rows import MineSettings
from tests.helpers.openai_stub_server import INSTANT_SUMMARIES, OpenAIStub, Plan, doc_key

SETTINGS = MineSettings(dataset="cnndm", engine="vllm", model="m", rationale_max_tokens=64, summaries_max_tokens=64)
RATIONALE = format_rationale(["A cat"], ["The cat sat on the mat."], [[("cat", "sat on", "mat")]], "cnndm")
SUMMARIES = INSTANT_SUMMARIES
PREPARED = {
    "id": ["a", "b"],
    "document": ["The cat sat on the mat.", "The dog ran in the park."],
    "summary": ["A cat sat.", "A dog ran."],
    "prompt_document": ["The cat sat on the mat.", "The dog ran in the park."],
    "truncated": [False, False],
}


def test_vllm_replica_structure(ray_local, tmp_path):
    """One GPU replica = one stage actor whose placement group is exactly tensor x pipeline GPU bundles."""
    config = VllmEngine(
        model=str(tmp_path),
        device="gpu",
        tensor_parallel_size=4,
        pipeline_parallel_size=2,
        replicas=(2, 6),
        max_model_len=16384,
        batch_size=48,
        accelerator_type="H100",
    )
    args = config.engine_args("gpu")
    assert args["model"] == str(tmp_path)
    assert (args["tensor_parallel_size"], args["pipeline_parallel_size"]) == (4, 2)
    assert args["enable_prefix_caching"] is True and args["max_model_len"] == 16384
    assert args["distributed_executor_backend"] == "ray"  # a replica spans 8 GPUs as Ray workers of its actor
    options = config.stage_options()
    assert options["num_gpus"] == 0  # the actor holds no GPU itself: its group's bundles go to vLLM's workers
    group = options["ray_remote_args_fn"].args[0]
    assert group["bundles"] == [{"GPU": 1, "CPU": 1, "accelerator_type:H100": 0.001}] * 8
    assert sum(b["GPU"] for b in group["bundles"]) == config.tensor_parallel_size * config.pipeline_parallel_size
    assert group["strategy"] == "PACK"
    compute = options["compute"]
    assert (compute.min_size, compute.max_size) == (2, 6)
    single = VllmEngine(model="m", device="gpu").stage_options()
    assert single["num_gpus"] == 1 and "ray_remote_args_fn" not in single
    assert "distributed_executor_backend" not in VllmEngine(model="m").engine_args("gpu")
    with pytest.raises(InputError):
        VllmEngine(model="m", replicas=(3, 2))


def test_a_cpu_replica_is_one_actor_holding_its_workers_cores(ray_local):
    """--device cpu: vLLM's multiprocessing executor (its Ray executor is refused on CPU) in one actor that holds
    tensor x pipeline x --cpus-per-worker CPUs; eager and a bounded KV cache unless told otherwise; auto picks cpu
    on a cluster without GPUs."""
    engine = VllmEngine(model="m", device="cpu", tensor_parallel_size=2, cpus_per_worker=3, replicas=(1, 2))
    options = engine.stage_options()
    assert options["num_cpus"] == 6 and options["num_gpus"] == 0 and "ray_remote_args_fn" not in options
    args = engine.engine_args("cpu")
    assert args["distributed_executor_backend"] == "mp" and args["enforce_eager"] is True
    assert args["kv_cache_memory_bytes"] == 2 * 2**30 and "gpu_memory_utilization" not in args
    assert VllmEngine(model="m").resolved_device() == "cpu"  # the test cluster has no GPUs
    tuned = VllmEngine(model="m", device="cpu", dtype="float32", enforce_eager=False, kv_cache_gib=0.5,
                       extra_engine_kwargs={"swap_space": 0, "dtype": "bfloat16"})
    args = tuned.engine_args("cpu")
    assert args["enforce_eager"] is False and args["kv_cache_memory_bytes"] == 2**29
    assert args["swap_space"] == 0 and args["dtype"] == "bfloat16"  # --engine-kwargs win
    assert tuned.process_env("cpu") == {"VLLM_CPU_OMP_THREADS_BIND": "auto"}
    with pytest.raises(InputError, match="accelerator-type"):
        VllmEngine(model="m", device="cpu", accelerator_type="H100")


def test_http_config_validates_and_reads_replies():
    with pytest.raises(InputError):
        HttpEngine(url="localhost:8000", model="m")
    assert HttpEngine(url="http://h:8000/v1", model="m").endpoint == "http://h:8000/v1/chat/completions"
    ok = http_reply({"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3}})
    assert (ok.text, ok.prompt_tokens, ok.error, ok.cut_at_max_tokens) == ("hi", 3, None, False)
    assert http_reply({"choices": [{"message": {"content": "h"}, "finish_reason": "length"}]}).cut_at_max_tokens
    assert http_reply({ERROR_KEY: "HTTP 500"}).error == "http: HTTP 500"
    assert "without choices" in http_reply({"error": {"message": "bad"}}).error


def test_session_retries_then_reports_without_the_key():
    async def post_all(url, secret):
        async with ResilientSession(max_retries=2, base_wait_s=0.01, redact_values=(secret,)) as session:
            bodies = []
            for content in ("Article:\nflaky\n\nReference summary:\ns", "Article:\ndown\n\nReference summary:\ns"):
                payload = json.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})
                body, _ = await session.post_json(url, headers={"Authorization": f"Bearer {secret}"}, data=payload)
                bodies.append(body)
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
