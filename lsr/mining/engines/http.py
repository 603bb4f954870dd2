"""The ``http`` engine: any OpenAI-compatible chat-completions endpoint (a vLLM server, a hosted API).

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from lsr.core.cli_config import Flag
from lsr.mining.engines.base import CallResult, ChatRequest, LlmEngine


class HttpEngine(LlmEngine):
    """Requests go through :class:`~lsr.mining.http_session.ResilientSession` (retries, in-flight bound, masking).

    In flight at the server: the mining stage runs ``concurrency`` actors, and each actor holds at most
    ``max_in_flight`` requests, call A and call B together, so the server sees at most
    ``concurrency * max_in_flight`` requests.
    """

    kind: Literal["http"] = "http"
    url: str = Field(description="endpoint base URL, e.g. http://host:8000/v1")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="environment variable holding the API key")
    concurrency: int = Field(default=1, ge=1, description="request actors (each sends both calls of its documents)")
    batch_size: int = Field(default=16, ge=1, description="documents per stage batch (http 16, vllm 32)")
    max_in_flight: int = Field(default=16, ge=1, description="concurrent requests per request actor (calls A and B)")
    qps: int | None = Field(default=None, ge=1, description="request rate limit per actor")
    max_retries: int = Field(default=4, ge=0, description="retries on 429/5xx/connection errors")
    base_retry_wait_s: Annotated[float, Flag(name="--retry-wait")] = Field(
        default=1.0, ge=0, description="base backoff in seconds (doubles per retry)"
    )
    max_retry_wait_s: Annotated[float, Flag(cli=False)] = 30.0
    timeout_s: Annotated[float, Flag(name="--timeout")] = Field(default=300.0, gt=0, description="seconds per request")
    # Waiting on sockets needs little CPU; a whole core per request actor would starve small machines.
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
        """Rows in one stage task: one budget. An actor runs two such tasks at once
        (:data:`~lsr.mining.actor_pool.TASKS_PER_ACTOR`), so while the last requests of one block finish, the
        other block's documents already fill the freed slots."""
        return self.max_in_flight

    def chat_client(self, on_send: Callable[[], None] | None = None) -> HttpChatClient:
        return HttpChatClient(self, on_send)

    def stage_options(self) -> dict[str, Any]:
        from lsr.mining.actor_pool import actor_options

        return {**actor_options(self, self.concurrency, self.concurrency), "num_cpus": self.num_cpus}


class HttpChatClient:
    """One actor's chat client: a :class:`~lsr.mining.http_session.ResilientSession` both calls share.

    The session (retries, masking, the ``max_in_flight`` slots) is opened on the first call, inside the actor's
    event loop; ``--qps`` spaces the starts of this actor's requests.
    """

    def __init__(self, engine: HttpEngine, on_send: Callable[[], None] | None = None):
        self._engine = engine
        self._on_send = on_send  # counts every request (each retry too) as it leaves
        key = engine.api_key()
        self._headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
        self._session = None
        self._next_start = 0.0

    def start(self) -> None:
        """Nothing to load: the session opens on the first call, inside the actor's event loop."""

    def _open(self):
        from lsr.mining.http_session import ResilientSession

        engine = self._engine
        return ResilientSession(
            max_retries=engine.max_retries,
            base_wait_s=engine.base_retry_wait_s,
            max_wait_s=engine.max_retry_wait_s,
            timeout_s=engine.timeout_s,
            max_in_flight=engine.max_in_flight,
            redact_values=engine.secrets(),
            on_send=self._on_send,
        )

    async def _pace(self) -> None:
        if not self._engine.qps:
            return
        loop = asyncio.get_running_loop()
        start = max(loop.time(), self._next_start)
        self._next_start = start + 1.0 / self._engine.qps
        await asyncio.sleep(start - loop.time())

    async def chat(self, request: ChatRequest) -> CallResult:
        if self._session is None:
            self._session = self._open()
        await self._pace()
        reply, attempts = await self._session.post_json(self._engine.endpoint, headers=self._headers,
                                                        data=json.dumps(chat_payload(self._engine.model, request)))
        return dataclasses.replace(http_reply(reply), attempts=attempts)


def chat_payload(model: str, request: ChatRequest) -> dict[str, Any]:
    """The chat-completions request body; a schema becomes OpenAI's ``response_format`` of type ``json_schema``
    (``strict``: the server must hold the reply to it, as vLLM's server does with its structured outputs)."""
    payload: dict[str, Any] = {"model": model, "messages": request.messages, "temperature": request.temperature,
                               "max_tokens": request.max_tokens}
    if request.schema is not None:
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "lsr_reply", "schema": request.schema, "strict": True},
        }
    return payload


def http_reply(response: dict[str, Any]) -> CallResult:
    """A chat-completions JSON object (or the session's error) as a :class:`CallResult`."""
    from lsr.mining.http_session import ERROR_KEY

    if response.get(ERROR_KEY):
        return CallResult(None, None, None, f"http: {response[ERROR_KEY]}")
    usage = response.get("usage") or {}
    try:
        choice = response["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        detail = response.get("error") or sorted(k for k, v in response.items() if v is not None)
        return CallResult(None, None, None, f"http: reply without choices[0].message.content ({detail})")
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    if text is None:
        return CallResult(None, usage.get("prompt_tokens"), usage.get("completion_tokens"), "http: empty content",
                          finish)
    return CallResult(text, usage.get("prompt_tokens"), usage.get("completion_tokens"), None, finish)
