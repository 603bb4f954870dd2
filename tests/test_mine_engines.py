"""Engine construction without a GPU (vLLM), the HTTP session's retries, and the token budget."""

from __future__ import annotations

import asyncio
import json

import pyarrow as pa
import pytest
from openai_stub_server import INSTANT_SUMMARIES, OpenAIStub, Plan, doc_key

from lsr.errors import InputError
from lsr.mining.budget import TokenBudget
from lsr.mining.engines import HttpEngine, VllmEngine
from lsr.mining.engines.http import http_reply
from lsr.mining.http_session import ERROR_KEY, ResilientSession, backoff_seconds
from lsr.mining.rows import MineSettings
from lsr.prompts import format_rationale

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
    """One replica = one stage actor whose placement group is exactly tensor x pipeline GPU bundles."""
    config = VllmEngine(
        model=str(tmp_path),
        tensor_parallel_size=4,
        pipeline_parallel_size=2,
        replicas=(2, 6),
        max_model_len=16384,
        batch_size=48,
        accelerator_type="H100",
    )
    args = config.engine_args()
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
    single = VllmEngine(model="m").stage_options()
    assert single["num_gpus"] == 1 and "ray_remote_args_fn" not in single
    assert "distributed_executor_backend" not in VllmEngine(model="m").engine_args()
    with pytest.raises(InputError):
        VllmEngine(model="m", replicas=(3, 2))


def test_both_calls_of_a_document_reach_the_same_vllm_engine(monkeypatch):
    """A fake ``vllm`` module stands in for the GPU: one engine per client, built from the engine args, and both
    calls of every document go to it (call B's prompt starts with call A's document: the prefix cache can hit)."""
    import sys
    import types

    from lsr.mining.document_stage import DocumentMiner
    from lsr.mining.engines.vllm import VllmChatClient

    built, prompts = [], []

    class FakeTokenizer:
        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "\n".join(m["content"] for m in messages)

    class FakeEngine:
        @classmethod
        def from_engine_args(cls, args):
            built.append(args)
            return cls()

        async def get_tokenizer(self):
            return FakeTokenizer()

        async def generate(self, prompt, params, request_id):
            prompts.append((id(self), prompt))
            text = RATIONALE if "Reference summary" in prompt else SUMMARIES
            out = types.SimpleNamespace(text=text, token_ids=[1, 2, 3])
            yield types.SimpleNamespace(prompt_token_ids=[0] * 5, outputs=[out])

    fake = types.ModuleType("vllm")
    fake.AsyncEngineArgs = lambda **kw: kw
    fake.AsyncLLMEngine = FakeEngine
    fake.SamplingParams = lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", fake)

    engine = VllmEngine(model="m", tensor_parallel_size=2)
    miner = DocumentMiner(engine.chat_client(), SETTINGS)
    assert isinstance(miner._client, VllmChatClient) and len(built) == 1
    assert built[0]["tensor_parallel_size"] == 2 and built[0]["model"] == "m"
    rows = asyncio.run(miner(pa.table(PREPARED)))
    assert rows.column("error").to_pylist() == [None, None]
    assert rows.column("total_summary").to_pylist() == ["The budget passed."] * 2
    assert len(prompts) == 4 and len({engine_id for engine_id, _ in prompts}) == 1
    for document in PREPARED["prompt_document"]:
        assert sum(f"Article:\n{document}" in prompt for _, prompt in prompts) == 2  # calls A and B, document first


def test_http_config_validates_and_reads_replies():
    with pytest.raises(InputError):
        HttpEngine(url="localhost:8000", model="m")
    assert HttpEngine(url="http://h:8000/v1", model="m").endpoint == "http://h:8000/v1/chat/completions"
    ok = http_reply({"http_response": {"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3}}})
    assert (ok.text, ok.prompt_tokens, ok.error) == ("hi", 3, None)
    assert http_reply({"http_response": {ERROR_KEY: "HTTP 500"}}).error == "http: HTTP 500"
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
