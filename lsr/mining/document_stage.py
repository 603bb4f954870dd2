"""One Ray Data actor stage that mines each document end to end: call A, parse, call B, parse (issue 12).

Why not ``ray.data.llm``'s processors, which mining used until now (two chained ``build_processor`` stages, one per
call). Measured with ``bench/bench_mine_latency.py`` (2,048 documents, a loopback server answering every request
after 1 s, 256 requests in flight, the idle 2-core machine, Ray 2.60): ideal 16.0 s, a bare asyncio client 16.9 s,
``lsr mine`` through the two processors 34.1 s (0.50 of the bare client); with ``--batch-size 1`` 38.9 s. The
processors lose the budget in three ways no option of theirs reaches:

- a processor stage releases a batch only when every request of it is done, so call B of a document waits for the
  slowest call A of its batch; smaller batches only trade that wait for per-row operator overhead (the 38.9 s);
- call A and call B are separate actor pools with separate budgets: while one drains, the other's slots idle, and
  the server sees up to twice the budget at the turn-over;
- on the vLLM path each ``build_processor`` starts its own engine pool: a 70B model is loaded twice (twice the
  GPUs) and call B, which repeats call A's document as its prompt prefix, can never hit call A's prefix cache.

Here one actor pool holds one chat client per actor (an HTTP session, or one vLLM engine spanning tensor x
pipeline GPUs) that both calls of a document use. Every document of a batch runs as its own coroutine (A, parse,
B, parse) under one in-flight budget; a task is one block of one budget, two tasks run at once per actor, and a
task's batches all run at once (:func:`actor_options`), so a slow document holds back no other document's calls.
A failed call becomes the row's ``error``, never an exception: no row is lost and no batch-mate fails with it.

The mining tests still run end to end against the loopback OpenAI-compatible server, now through this stage; the
``ray.data.llm`` processors stay in use where one call per row is the whole job (the KD teacher pass).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from lsr.core.schema import RATIONALES
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

#: Tasks (blocks of ``engine.rows_in_flight`` documents, one budget each) an actor runs at once, each on its own
#: concurrency slot of the actor. With one task the actor's budget emptied at every block boundary: the next block
#: was dispatched only after the last document of the current one returned, and the server saw 0 requests for
#: 0.2-0.3 s each time (sampled every 20 ms, issue 12). A second task fills that gap, but only when the actor may run
#: two calls at once: Ray Data's actors run one call at a time by default, so a second task merely queued behind the
#: first (the earlier "two tasks no faster" measurement). Both tasks' documents share the one chat client and its
#: in-flight slots, so the server never sees more than the budget. Measured (8,192 documents, 1 s, 256 in flight,
#: 2 cores, two sessions): one task of two budgets 78-83 s, 0.81-0.84 of the bare client; two tasks of one budget
#: 72.9-78.1 s, 0.85-0.92; two tasks of two budgets 73.9 s, 0.90 (and twice the rows a kill can lose). The actor
#: holds two budgets of documents either way.
TASKS_PER_ACTOR = 2


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

    def __init__(self, client: ChatClient, settings: MineSettings):
        self._settings = settings
        self._client = client
        client.start()

    async def __call__(self, batch: pa.Table) -> pa.Table:
        rows = await asyncio.gather(*(mine_document(r, self._client, self._settings) for r in batch.to_pylist()))
        return pa.Table.from_pylist(list(rows), schema=RATIONALES)


def mine_documents(ds: ray.data.Dataset, engine: LlmEngine, settings: MineSettings) -> ray.data.Dataset:
    """The stage applied to prepared rows (``id, document, summary, prompt_document, truncated``)."""
    return ds.map_batches(
        DocumentMiner,
        fn_constructor_kwargs={"client": engine.chat_client(), "settings": settings},
        # Never more than a block: a batch larger than the blocks makes Ray Data bundle several blocks into one
        # task, whose rows then leave the actor only together (--max-num-seqs 8 with --batch-size 32: every row
        # of a 40-document run reached the driver in its last second).
        batch_size=min(engine.batch_size, engine.rows_in_flight),
        batch_format="pyarrow",
        **engine.stage_options(),
    )


def actor_options(engine: LlmEngine, low: int, high: int) -> dict[str, Any]:
    """The stage's actor pool: ``low``..``high`` actors (autoscaling when they differ), :data:`TASKS_PER_ACTOR`
    tasks (blocks of ``engine.rows_in_flight`` documents, one budget each) running at once per actor, each task's
    batches all running at once (:func:`widen_async_batches`), so the budget stays full across block boundaries."""
    import ray.data

    widen_async_batches(-(-engine.rows_in_flight // min(engine.batch_size, engine.rows_in_flight)))
    pool = ray.data.ActorPoolStrategy(
        min_size=low,
        max_size=high,
        max_tasks_in_flight_per_actor=TASKS_PER_ACTOR,
        max_concurrent_calls_per_actor=TASKS_PER_ACTOR,
    )
    return {"compute": pool}


def widen_async_batches(batches: int) -> None:
    """Let one Ray Data task run at least ``batches`` async batches at once (Ray's default is 4).

    Ray Data (2.5x-2.60) gives an async ``map_batches`` UDF at most ``DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY`` (4)
    concurrent batches per task and has no per-operator option for it; with batches of 16 documents one task would
    hold 64 whatever ``--max-in-flight`` said (issue 12 measured 64 of a budget of 256). The constant is read on the
    driver when the dataset is planned, so raising it before the stage is applied is the one place the workaround
    lives (recheck on a Ray upgrade). It never lowers the value (a user's ``RAY_DATA_DEFAULT_ASYNC_BATCH_UDF_MAX_
    CONCURRENCY`` stays when larger); the client's in-flight budget still bounds what reaches the server.
    """
    from ray.data._internal.planner import plan_udf_map_op

    if plan_udf_map_op.DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY < batches:
        plan_udf_map_op.DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY = batches
