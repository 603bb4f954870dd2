"""The aiohttp session the HTTP engine hands to ``ray.data.llm``'s HTTP request stage.

Ray 2.60's stage (``HttpRequestUDF``) awaits a batch's requests one after the other, retries only 408/429/
502-504, and raises when a request still fails, which fails the whole batch: one bad document would take its
batch-mates (and, once Ray's task retries are spent, the job) down with it. The stage accepts a
``session_factory``; this session is one. It

- starts every request the moment the stage asks for it, so a batch's requests run concurrently (bounded by
  ``max_in_flight``) while the stage still reads the replies in order;
- retries 429, 408 and every 5xx, and connection errors and timeouts, with exponential backoff plus jitter,
  honouring ``Retry-After``;
- hands the stage a JSON reply in every case: the server's own, or ``{"lsr_error": "..."}`` once retries
  are spent, which the mining postprocess turns into the row's ``error``. Error texts never contain the
  request headers, and any secret passed in ``redact`` is masked.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from typing import Any

import aiohttp

ERROR_KEY = "lsr_error"
RETRYABLE = frozenset({408, 425, 429})


def is_retryable(status: int) -> bool:
    return status in RETRYABLE or status >= 500


def backoff_seconds(attempt: int, base: float, cap: float, retry_after: str | None = None) -> float:
    """Wait before retry ``attempt`` (1-based): the server's Retry-After if it gives one, else full jitter."""
    if retry_after:
        try:
            return min(cap, max(0.0, float(retry_after)))
        except ValueError:
            pass
    return min(cap, base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class _Reply:
    """What the stage reads from a response: status, reason, and the JSON body."""

    def __init__(self, body: dict[str, Any]):
        self.status = 200
        self.reason = "OK"
        self._body = body

    async def json(self) -> dict[str, Any]:
        return self._body

    async def __aenter__(self) -> _Reply:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Pending:
    """``session.post(...)``'s return value: already running; awaiting it gives the :class:`_Reply`."""

    def __init__(self, task: asyncio.Task):
        self._task = task

    def __await__(self):
        return self._task.__await__()


class ResilientSession:
    """An ``aiohttp.ClientSession`` stand-in for the HTTP stage (see the module docstring)."""

    def __init__(
        self,
        *,
        max_retries: int = 4,
        base_wait_s: float = 1.0,
        max_wait_s: float = 30.0,
        timeout_s: float = 300.0,
        max_in_flight: int = 32,
        redact_values: Sequence[str] = (),
    ):
        self.max_retries = max_retries
        self.base_wait_s = base_wait_s
        self.max_wait_s = max_wait_s
        self.redact_values = tuple(redact_values)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
        self._slots = asyncio.Semaphore(max_in_flight)

    async def __aenter__(self) -> ResilientSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    def post(self, url: str, headers: dict[str, str] | None = None, data: Any = None) -> _Pending:
        return _Pending(asyncio.ensure_future(self._post(url, headers or {}, data)))

    async def _post(self, url: str, headers: dict[str, str], data: Any) -> _Reply:
        attempts = self.max_retries + 1
        last = "no attempt made"
        for attempt in range(1, attempts + 1):
            retry_after = None
            async with self._slots:
                try:
                    async with self._session.post(url, headers=headers, data=data) as response:
                        text = await response.text()
                        if response.status < 300:
                            try:
                                body = json.loads(text)
                            except json.JSONDecodeError:
                                return self._error(
                                    f"HTTP {response.status} with a body that is not JSON: {text[:200]!r}"
                                )
                            if not isinstance(body, dict):
                                return self._error(f"HTTP {response.status} with a JSON body that is not an object")
                            return _Reply(body)
                        last = f"HTTP {response.status} {response.reason or ''}".strip() + f": {text[:200]}"
                        if not is_retryable(response.status):
                            return self._error(last)
                        retry_after = response.headers.get("Retry-After")
                except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                    last = f"{type(err).__name__}: {err}"
            if attempt < attempts:
                await asyncio.sleep(backoff_seconds(attempt, self.base_wait_s, self.max_wait_s, retry_after))
        return self._error(f"gave up after {attempts} attempts; last: {last}")

    def _error(self, message: str) -> _Reply:
        return _Reply({ERROR_KEY: redact(message, self.redact_values)})
