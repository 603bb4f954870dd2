"""The aiohttp session behind the HTTP engine's chat client (:class:`lsr.mining.engines.http.HttpChatClient`).

It was written for ``ray.data.llm``'s HTTP request stage (Ray 2.60's ``HttpRequestUDF`` awaits a batch's requests
one after the other, retries only 408/429/502-504 and raises when a request still fails, failing the whole batch),
which mining used until issue 12 and whose ``session_factory`` it still fits. Mining's own stage
(:mod:`lsr.mining.document_stage`) now calls it directly, both calls of every document. It

- starts every request the moment it is asked for, under ``max_in_flight`` slots shared by every session of the
  running event loop (one bound per request actor, as documented on ``--max-in-flight``);
- retries 429, 408 and every 5xx, and connection errors and timeouts, with exponential backoff plus jitter,
  honouring ``Retry-After``;
- hands back a JSON reply in every case: the server's own, or ``{"lsr_error": "..."}`` once retries are spent,
  which becomes the row's ``error``. Error texts never contain the request headers, and any secret passed in
  ``redact_values`` is masked *before* a text is shortened, so a server echoing the key near the cut cannot leave a
  prefix of it behind.
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
#: Characters of a server's reply kept in an error text (after masking).
DETAIL_CHARS = 200

_SLOTS: dict[tuple[int, int], asyncio.Semaphore] = {}


def shared_slots(max_in_flight: int) -> asyncio.Semaphore:
    """The in-flight slots of the running event loop (one request actor), shared by all its sessions."""
    key = (id(asyncio.get_running_loop()), max_in_flight)
    if key not in _SLOTS:
        _SLOTS[key] = asyncio.Semaphore(max_in_flight)
    return _SLOTS[key]


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


def masked_detail(text: str, secrets: Sequence[str], limit: int = DETAIL_CHARS) -> str:
    """``text`` with every secret masked, then cut to ``limit`` characters (in that order)."""
    return redact(text, secrets)[:limit]


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
        # aiohttp's connector allows 100 connections by default, which silently capped a budget above 100 (issue 12);
        # the slots below are the one bound.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout_s), connector=aiohttp.TCPConnector(limit=0)
        )
        self._slots = shared_slots(max_in_flight)

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
                                detail = masked_detail(text, self.redact_values)
                                return self._error(f"HTTP {response.status} with a body that is not JSON: {detail!r}")
                            if not isinstance(body, dict):
                                return self._error(f"HTTP {response.status} with a JSON body that is not an object")
                            return _Reply(body)
                        detail = masked_detail(text, self.redact_values)
                        last = f"HTTP {response.status} {response.reason or ''}".strip() + f": {detail}"
                        if not is_retryable(response.status):
                            return self._error(last)
                        retry_after = response.headers.get("Retry-After")
                except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                    last = f"{type(err).__name__}: {masked_detail(str(err), self.redact_values)}"
            if attempt < attempts:
                await asyncio.sleep(backoff_seconds(attempt, self.base_wait_s, self.max_wait_s, retry_after))
        return self._error(f"gave up after {attempts} attempts; last: {last}")

    def _error(self, message: str) -> _Reply:
        return _Reply({ERROR_KEY: redact(message, self.redact_values)})
