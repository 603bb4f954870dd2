"""The ``http`` engine: any OpenAI-compatible chat-completions endpoint (a vLLM server, a hosted API)."""

from __future__ import annotations

import functools
import os
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from lsr.cli_config import Flag
from lsr.mining.engines.base import CallResult, LlmEngine


class HttpEngine(LlmEngine):
    """Requests go through :class:`~lsr.mining.http_session.ResilientSession` (retries, in-flight bound, masking).

    In flight at the server: call A and call B each run ``concurrency`` request actors, and each actor holds at
    most ``max_in_flight`` requests, so the server sees at most ``2 * concurrency * max_in_flight`` requests.
    """

    kind: Literal["http"] = "http"
    url: str = Field(description="endpoint base URL, e.g. http://host:8000/v1")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="environment variable holding the API key")
    concurrency: int = Field(default=1, ge=1, description="request actors (per call: A and B each have this many)")
    batch_size: int = Field(default=16, ge=1, description="rows per request batch (http 16, vllm 32)")
    max_in_flight: int = Field(default=16, ge=1, description="concurrent requests per request actor")
    qps: int | None = Field(default=None, ge=1, description="request rate limit per actor")
    max_retries: int = Field(default=4, ge=0, description="retries on 429/5xx/connection errors")
    base_retry_wait_s: Annotated[float, Flag(name="--retry-wait")] = Field(
        default=1.0, ge=0, description="base backoff in seconds (doubles per retry)"
    )
    max_retry_wait_s: Annotated[float, Flag(cli=False)] = 30.0
    timeout_s: Annotated[float, Flag(name="--timeout")] = Field(default=300.0, gt=0, description="seconds per request")
    # Waiting on sockets needs little CPU; a whole core per request actor would starve small machines
    # (call A and call B each hold an actor pool).
    num_cpus: Annotated[float, Flag(cli=False)] = 0.25

    @field_validator("url")
    @classmethod
    def _is_http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r}: expected an http:// or https:// URL of a chat-completions endpoint")
        return url

    @property
    def endpoint(self) -> str:
        """The chat-completions URL: a base URL such as ``http://host:8000/v1`` gets the path appended."""
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def secrets(self) -> tuple[str, ...]:
        key = self.api_key()
        return (key,) if key else ()

    @property
    def rows_in_flight(self) -> int:
        """Rows one request actor should hold so its ``max_in_flight`` slots never wait on a batch's tail.

        Twice the budget: a batch is yielded only when all its requests are done, so while the last requests of
        some batches finish, the next batches must already be sending.
        """
        return 2 * self.max_in_flight

    def processor_config(self):
        """The ``HttpRequestProcessorConfig``; the key goes only into the request headers."""
        from ray.data.llm import HttpRequestProcessorConfig

        from lsr.mining.http_session import ResilientSession

        widen_async_batches(-(-self.rows_in_flight // self.batch_size))

        key = self.api_key()
        session_factory = functools.partial(
            ResilientSession,
            max_retries=self.max_retries,
            base_wait_s=self.base_retry_wait_s,
            max_wait_s=self.max_retry_wait_s,
            timeout_s=self.timeout_s,
            max_in_flight=self.max_in_flight,
            redact_values=self.secrets(),
        )
        return HttpRequestProcessorConfig(
            url=self.endpoint,
            headers={"Authorization": f"Bearer {key}"} if key else {},
            qps=self.qps,
            # Retries happen in the session, which also covers 500s and never raises into the batch.
            max_retries=0,
            concurrency=self.concurrency,
            batch_size=self.batch_size,
            session_factory=session_factory,
            http_request_stage={"num_cpus": self.num_cpus},
        )

    def request(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> dict[str, Any]:
        payload = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        return {"payload": payload}

    def reply(self, data: dict[str, Any]) -> CallResult:
        return http_reply(data)


def widen_async_batches(batches: int) -> None:
    """Let one Ray Data task run at least ``batches`` async batches at once (Ray's default is 4).

    Ray Data (2.5x) gives an async ``map_batches`` UDF such as ray.data.llm's HTTP stage at most
    ``DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY`` (4) concurrent batches per task, and the stage's actor runs one
    task at a time, so one stage held at most 4 x ``batch_size`` requests whatever ``--max-in-flight`` said
    (issue 12: 64 of a budget of 256). HttpRequestProcessorConfig has no knob for it; the constant is read on the
    driver when the dataset is planned, so raising it here, before the processor is applied, is the one place
    the workaround lives. It never lowers the value (a user's ``RAY_DATA_DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY``
    stays when larger). The per-actor ``max_in_flight`` semaphore still bounds what reaches the server.
    """
    from ray.data._internal.planner import plan_udf_map_op

    if plan_udf_map_op.DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY < batches:
        plan_udf_map_op.DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY = batches


def http_reply(data: dict[str, Any]) -> CallResult:
    """A chat-completions JSON (or the session's error) as a :class:`CallResult`."""
    from lsr.mining.http_session import ERROR_KEY

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
