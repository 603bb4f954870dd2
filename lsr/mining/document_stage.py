"""One Ray Data actor stage that mines each document end to end: call A, parse, call B, parse.

Why not ``ray.data.llm``'s processors (two chained ``build_processor`` stages, one per call). Measured with
``bench/bench_mine_latency.py`` (2,048 documents, a loopback server answering every request after 1 s, 256 requests
in flight, the idle 2-core machine, Ray 2.60): ideal 16.0 s, a bare asyncio client 16.9 s, ``lsr mine`` through the
two processors 34.1 s (0.50 of the bare client); with ``--batch-size 1`` 38.9 s. The processors lose the budget in
three ways no option of theirs reaches:

- a processor stage releases a batch only when every request of it is done, so call B of a document waits for the
  slowest call A of its batch; smaller batches only trade that wait for per-row operator overhead (the 38.9 s);
- call A and call B are separate actor pools with separate budgets: while one drains, the other's slots idle, and
  the server sees up to twice the budget at the turn-over;
- on the vLLM path each ``build_processor`` starts its own engine pool: a 70B model is loaded twice (twice the
  GPUs) and call B, which repeats call A's document as its prompt prefix, can never hit call A's prefix cache.

Here one actor pool holds one chat client per actor (an HTTP session, or one vLLM engine spanning tensor x
pipeline GPUs) that both calls of a document use. Every document of a batch runs as its own coroutine (A, parse,
B, parse) under one in-flight budget; a task is one block of one budget, two tasks run at once per actor, and a
task's batches all run at once (:func:`lsr.mining.actor_pool.actor_options`), so a slow document holds back no
other document's calls.
A failed call becomes the row's ``error``, never an exception: no row is lost and no batch-mate fails with it.

The mining tests run end to end through this stage against the loopback OpenAI-compatible server. The
``ray.data.llm`` processors are the right tool where one call per row is the whole job (the KD teacher pass on vLLM,
:mod:`lsr.kd.vllm_teacher`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from lsr.core.schema import RATIONALES
from lsr.mining.actor_pool import allow_upscaling, batch_size_of
from lsr.mining.engines.base import CallResult, ChatRequest
from lsr.mining.rows import (
    DOCUMENT_TOO_LONG,
    MineSettings,
    after_rationale,
    final_row,
    rationale_request,
    summaries_request,
)

if TYPE_CHECKING:
    import ray.data

    from lsr.mining.engines.base import LlmEngine
    from lsr.mining.tally import TallyCounter



class ChatClient(Protocol):
    """What a stage actor talks to. Made on the driver (where the API key's variable is read) and shipped to each
    actor, which calls ``start`` once (a vLLM engine loads there) and then ``chat`` for both calls of every
    document; a failed call is a :class:`CallResult` with its error."""

    def start(self) -> None: ...

    async def chat(self, request: ChatRequest) -> CallResult: ...


def too_long_error(row: dict[str, Any]) -> dict[str, Any]:
    """Mark a document the context cannot hold (the budget left it no text): no call is made for it."""
    if not row.get("prompt_document"):
        row["a_error"] = f"{DOCUMENT_TOO_LONG}: the summary and the completions leave no room for the document"
    return row


async def safe_chat(client: ChatClient, request: ChatRequest) -> CallResult:
    """A call whose unexpected exception becomes the call's error (the row keeps it) instead of failing the batch."""
    try:
        return await client.chat(request)
    except asyncio.CancelledError:
        raise
    except Exception as err:  # noqa: BLE001 (any client failure belongs to this one row)
        return CallResult(None, None, None, f"{type(err).__name__}: {str(err)[:200]}")


async def mine_document(row: dict[str, Any], client: ChatClient, settings: MineSettings) -> dict[str, Any]:
    """One document's output row: call A, its parse, call B right after (same client), its parse."""
    row = too_long_error(dict(row))
    spec_a = None if row.get("a_error") else rationale_request(row, settings)
    result_a = await safe_chat(client, spec_a) if spec_a else CallResult(None, None, None, None)
    after_a = after_rationale(row, result_a, settings)
    spec_b = summaries_request(after_a, settings)
    if spec_b is None:
        return final_row(after_a, None, settings)
    return final_row(after_a, await safe_chat(client, spec_b), settings)


class DocumentMiner:
    """The Ray Data callable class: one chat client per actor, every document of a batch mined concurrently."""

    def __init__(self, client: ChatClient, settings: MineSettings, tally: TallyCounter | None = None):
        self._settings = settings
        self._client = client
        self._tally = tally
        client.start()

    async def __call__(self, batch: pa.Table) -> pa.Table:
        if self._tally is not None:
            self._tally.documents(batch.num_rows)  # counted as they start: a dead actor's documents stay counted
        rows = await asyncio.gather(*(mine_document(r, self._client, self._settings) for r in batch.to_pylist()))
        return pa.Table.from_pylist(list(rows), schema=RATIONALES)


def mine_documents(ds: ray.data.Dataset, engine: LlmEngine, settings: MineSettings,
                   tally: TallyCounter | None = None) -> ray.data.Dataset:
    """The stage applied to prepared rows (``id, document, summary, prompt_document, truncated``); with a ``tally``
    (:mod:`lsr.mining.tally`) every request and every document started is counted there too."""
    options = engine.stage_options()
    mined = ds.map_batches(
        DocumentMiner,
        fn_constructor_kwargs={"client": engine.chat_client(tally), "settings": settings, "tally": tally},
        batch_size=batch_size_of(engine),
        batch_format="pyarrow",
        **options,
    )
    return allow_upscaling(mined, options)
