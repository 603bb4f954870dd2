"""The LLM engines of the mining job, as configs plus builders of ``ray.data.llm`` processors.

Both engines speak chat messages and return the same thing per call (:class:`CallResult`), so the job
chains call A and call B the same way whatever serves them. ``vllm`` runs the model inside the Ray cluster
(GPU actors); ``http`` calls any OpenAI-compatible endpoint. The oracle needs no processor
(:mod:`lsr.mining.oracle`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lsr.errors import InputError
from lsr.mining.http_session import ERROR_KEY, ResilientSession

ENGINES = ("vllm", "http", "oracle")

#: Set by a preprocess on rows that must not be sent (call A already failed): every ray.data.llm stage
#: passes rows with a non-empty ``__inference_error__`` through untouched, and the postprocess is skipped.
SKIP_MARK = "lsr-skip: "
ERROR_COLUMN = "__inference_error__"


@dataclass(frozen=True)
class CallResult:
    text: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None


@dataclass(frozen=True)
class HttpEngineConfig:
    """An OpenAI-compatible chat-completions endpoint (a vLLM server, a hosted API)."""

    url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 1  # request actors
    batch_size: int = 16
    max_in_flight: int = 16  # concurrent requests per actor
    qps: int | None = None  # per actor
    max_retries: int = 4
    base_retry_wait_s: float = 1.0
    max_retry_wait_s: float = 30.0
    timeout_s: float = 300.0
    # Waiting on sockets needs little CPU; a whole core per request actor would starve small machines
    # (call A and call B each hold an actor pool).
    num_cpus: float = 0.25

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise InputError(f"--url {self.url!r}: expected an http:// or https:// URL of a chat-completions endpoint")
        if not self.model:
            raise InputError("--model: the HTTP engine needs the model name the endpoint serves")
        for name in ("concurrency", "batch_size", "max_in_flight"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")
        if self.max_retries < 0:
            raise InputError("--max-retries must be 0 or more")

    @property
    def endpoint(self) -> str:
        """The chat-completions URL: a base URL such as ``http://host:8000/v1`` gets the path appended."""
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None


@dataclass(frozen=True)
class VllmEngineConfig:
    """vLLM engines inside the cluster: one replica spans tensor x pipeline parallel GPUs."""

    model_source: str
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    enable_prefix_caching: bool = True
    max_model_len: int = 8192
    replicas: tuple[int, int] = (1, 1)  # autoscaling range of engine replicas
    batch_size: int = 32
    max_num_seqs: int = 128
    gpu_memory_utilization: float = 0.9
    accelerator_type: str | None = None
    extra_engine_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        low, high = self.replicas
        if not 1 <= low <= high:
            raise InputError(f"--replicas {low},{high}: expected 1 <= MIN <= MAX")
        if self.tensor_parallel_size < 1 or self.pipeline_parallel_size < 1:
            raise InputError("--tensor-parallel-size and --pipeline-parallel-size must be at least 1")

    def engine_kwargs(self) -> dict[str, Any]:
        return {
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "enable_prefix_caching": self.enable_prefix_caching,
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            **self.extra_engine_kwargs,
        }

    def placement_group_config(self) -> dict[str, Any]:
        gpus = self.tensor_parallel_size * self.pipeline_parallel_size
        return {"bundles": [{"GPU": 1, "CPU": 1}] * gpus, "strategy": "PACK"}


# ------------------------------------------------------------------------------ requests and replies per engine


def http_request(config: HttpEngineConfig, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> dict:
    return {
        "payload": {
            "model": config.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
    }


def http_reply(data: dict[str, Any]) -> CallResult:
    """A chat-completions JSON (or the session's error) as a :class:`CallResult`."""
    response = data.get("http_response") or {}
    if response.get(ERROR_KEY):
        return CallResult(None, None, None, f"http: {response[ERROR_KEY]}")
    usage = response.get("usage") or {}
    try:
        choice = response["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        detail = response.get("error") or sorted(k for k, v in response.items() if v is not None)
        return CallResult(None, None, None, f"http: reply without choices[0].message.content ({detail})")
    if text is None:
        return CallResult(None, usage.get("prompt_tokens"), usage.get("completion_tokens"), "http: empty content")
    return CallResult(text, usage.get("prompt_tokens"), usage.get("completion_tokens"), None)


def vllm_request(messages: list[dict[str, str]], max_tokens: int, temperature: float) -> dict:
    return {"messages": messages, "sampling_params": {"temperature": temperature, "max_tokens": max_tokens}}


def vllm_reply(data: dict[str, Any]) -> CallResult:
    if data.get(ERROR_COLUMN):
        return CallResult(None, None, None, f"vllm: {data[ERROR_COLUMN]}")
    return CallResult(data.get("generated_text"), data.get("num_input_tokens"), data.get("num_generated_tokens"), None)


# ------------------------------------------------------------------------------------------ processor builders


def http_processor_config(config: HttpEngineConfig):
    """The ``HttpRequestProcessorConfig`` for ``config``; the key goes only into the request headers."""
    from ray.data.llm import HttpRequestProcessorConfig

    key = config.api_key()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    session_factory = functools.partial(
        ResilientSession,
        max_retries=config.max_retries,
        base_wait_s=config.base_retry_wait_s,
        max_wait_s=config.max_retry_wait_s,
        timeout_s=config.timeout_s,
        max_in_flight=config.max_in_flight,
        redact_values=(key,) if key else (),
    )
    return HttpRequestProcessorConfig(
        url=config.endpoint,
        headers=headers,
        qps=config.qps,
        # Retries happen in the session, which also covers 500s and never raises into the batch.
        max_retries=0,
        concurrency=config.concurrency,
        batch_size=config.batch_size,
        session_factory=session_factory,
        http_request_stage={"num_cpus": config.num_cpus},
    )


def vllm_processor_config(config: VllmEngineConfig):
    from ray.data.llm import vLLMEngineProcessorConfig

    return vLLMEngineProcessorConfig(
        model_source=config.model_source,
        engine_kwargs=config.engine_kwargs(),
        concurrency=config.replicas,
        batch_size=config.batch_size,
        accelerator_type=config.accelerator_type,
        placement_group_config=config.placement_group_config(),
        # A failed generation becomes the row's error instead of failing the job.
        should_continue_on_error=True,
        chat_template_stage=True,
        tokenize_stage=True,
        detokenize_stage=True,
    )


def build_call_processor(
    engine: HttpEngineConfig | VllmEngineConfig,
    make_request: Callable[[dict[str, Any]], dict[str, Any]],
    read_reply: Callable[[dict[str, Any], CallResult], dict[str, Any]],
):
    """A ``ray.data.llm`` processor for one of the two calls.

    ``make_request(row)`` returns the call's messages, max tokens and temperature, or ``None`` to skip the
    row (it passes through as an error row); ``read_reply(row, result)`` returns the row with the call's
    outputs added.
    """
    from ray.data.llm import build_processor

    if isinstance(engine, HttpEngineConfig):
        processor_config = http_processor_config(engine)

        def request(messages, max_tokens, temperature):
            return http_request(engine, messages, max_tokens, temperature)

        reply = http_reply
    else:
        processor_config = vllm_processor_config(engine)
        request = vllm_request
        reply = vllm_reply

    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        spec = make_request(row)
        if spec is None:
            return {ERROR_COLUMN: SKIP_MARK + "call not made"}
        messages, max_tokens, temperature = spec
        return {**request(messages, max_tokens, temperature), ERROR_COLUMN: ""}

    def postprocess(data: dict[str, Any]) -> dict[str, Any]:
        return read_reply(data, reply(data))

    return build_processor(processor_config, preprocess=preprocess, postprocess=postprocess)
