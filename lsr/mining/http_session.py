"""The HTTP engine's client (:class:`lsr.mining.engines.http.HttpChatClient`): one aiohttp session plus what
aiohttp does not do for a mining run. It

- bounds the requests in flight with ``max_in_flight`` slots shared by every session of the running event loop
  (one bound per request actor, as documented on ``--max-in-flight``); aiohttp's own connection cap is lifted,
  because its default of 100 silently capped larger budgets;
- retries 429, 408, 425 and every 5xx, and connection errors and timeouts, with exponential backoff plus jitter,
  honouring ``Retry-After`` (aiohttp has no retry policy; ``aiohttp-retry`` would be a dependency for these few
  lines and does not mask secrets);
- answers every request with a JSON object: the server's own, or ``{"lsr_error": "..."}`` once retries are spent,
  which becomes the row's ``error``. Error texts never contain the request headers, and any secret passed in
  ``redact_values`` is masked *before* a text is shortened, so a server echoing the key near the cut cannot leave a
  prefix of it behind.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Sequence
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


class ResilientSession:
    """An ``aiohttp.ClientSession`` with the retries, bound and masking of the module docstring; use it as an async
    context manager (the session closes on exit) and send with :meth:`post_json`."""

    def __init__(
        self,
        *,
        max_retries: int = 4,
        base_wait_s: float = 1.0,
        max_wait_s: float = 30.0,
        timeout_s: float = 300.0,
        max_in_flight: int = 32,
        redact_values: Sequence[str] = (),
        on_send: Callable[[], None] | None = None,
    ):
        self.max_retries = max_retries
        self.base_wait_s = base_wait_s
        self.max_wait_s = max_wait_s
        self.redact_values = tuple(redact_values)
        # aiohttp's connector allows 100 connections by default, which silently capped a budget above 100; the slots
        # below are the one bound.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout_s), connector=aiohttp.TCPConnector(limit=0)
        )
        self._slots = shared_slots(max_in_flight)
        #: Called once right before every request leaves (each retry too): the run's tally (lsr.mining.tally).
        self._on_send = on_send

    async def __aenter__(self) -> ResilientSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    async def post_json(
        self, url: str, headers: dict[str, str] | None = None, data: Any = None
    ) -> tuple[dict[str, Any], int]:
        """POST ``data``; the reply's JSON object (or ``{ERROR_KEY: why}`` once retries are spent) and the number of
        requests sent."""
        headers = headers or {}
        attempts = self.max_retries + 1
        last = "no attempt made"
        for attempt in range(1, attempts + 1):
            retry_after = None
            async with self._slots:
                if self._on_send is not None:
                    self._on_send()
                try:
                    async with self._session.post(url, headers=headers, data=data) as response:
                        text = await response.text()
                        if response.status < 300:
                            try:
                                body = json.loads(text)
                            except json.JSONDecodeError:
                                detail = masked_detail(text, self.redact_values)
                                return self._error(f"HTTP {response.status} with a body that is not JSON: "
                                                   f"{detail!r}", attempt)
                            if not isinstance(body, dict):
                                return self._error(f"HTTP {response.status} with a JSON body that is not an object",
                                                   attempt)
                            return body, attempt
                        detail = masked_detail(text, self.redact_values)
                        last = f"HTTP {response.status} {response.reason or ''}".strip() + f": {detail}"
                        if not is_retryable(response.status):
                            return self._error(last, attempt)
                        retry_after = response.headers.get("Retry-After")
                except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                    last = f"{type(err).__name__}: {masked_detail(str(err), self.redact_values)}"
            if attempt < attempts:
                await asyncio.sleep(backoff_seconds(attempt, self.base_wait_s, self.max_wait_s, retry_after))
        return self._error(f"gave up after {attempts} attempts; last: {last}", attempts)

    def _error(self, message: str, attempts: int) -> tuple[dict[str, Any], int]:
        return {ERROR_KEY: redact(message, self.redact_values)}, attempts
