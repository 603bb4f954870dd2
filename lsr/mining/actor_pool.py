"""The mining stage's actor pool: how many actors, how many blocks each runs at once, how many batches a block holds.

Kept apart from the stage (:mod:`lsr.mining.document_stage`) so that every engine can size its pool without
importing the stage that runs it.

``ray`` is imported inside the functions that use it, so that importing this module for one of its functions (on
the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ray.data

    from lsr.mining.engines.base import LlmEngine

#: Tasks (blocks of ``engine.rows_in_flight`` documents, one budget each) an actor runs at once, each on its own
#: concurrency slot of the actor. With one task the actor's budget empties at every block boundary: the next block
#: is dispatched only after the last document of the current one returns, and the server sees 0 requests for
#: 0.2-0.3 s each time (sampled every 20 ms). A second task fills that gap, but only when the actor may run two
#: calls at once: Ray Data's actors run one call at a time by default, and a second task then merely queues behind
#: the first (two tasks measure no faster than one). Both tasks' documents share the one chat client and its
#: in-flight slots, so the server never sees more than the budget. Measured (8,192 documents, 1 s, 256 in flight,
#: 2 cores, two sessions): one task of two budgets 78-83 s, 0.81-0.84 of the bare client; two tasks of one budget
#: 72.9-78.1 s, 0.85-0.92; two tasks of two budgets 73.9 s, 0.90 (and twice the rows a kill can lose). The actor
#: holds two budgets of documents either way.
TASKS_PER_ACTOR = 2

#: The pool utilisation (tasks in flight / the actors' concurrency slots) above which Ray Data adds an actor. Ray's
#: default, 1.75, counts on actors queueing more tasks than they run; here an actor runs every task it holds
#: (``max_tasks_in_flight_per_actor`` = ``max_concurrent_calls_per_actor``), so utilisation never exceeds 1.0 and a
#: pool of ``--replicas 1,3`` stayed at one actor (Ray Data warns "will not allow it to scale up"). Below 1.0, an
#: actor whose slots are all busy while blocks wait asks for one more.
UPSCALING_UTILISATION = 0.9


def batch_size_of(engine: LlmEngine) -> int:
    """Documents per stage batch: ``--batch-size``, never more than a block. A batch larger than the blocks makes
    Ray Data bundle several blocks into one task, whose rows then leave the actor only together (--max-num-seqs 8
    with --batch-size 32: every row of a 40-document run reached the driver in its last second)."""
    return min(engine.batch_size, engine.rows_in_flight)


def actor_options(engine: LlmEngine, low: int, high: int) -> dict[str, Any]:
    """The stage's actor pool: ``low``..``high`` actors (autoscaling when they differ), :data:`TASKS_PER_ACTOR`
    tasks (blocks of ``engine.rows_in_flight`` documents, one budget each) running at once per actor, each task's
    batches all running at once (:func:`widen_async_batches`), so the budget stays full across block boundaries."""
    import ray.data

    widen_async_batches(-(-engine.rows_in_flight // batch_size_of(engine)))
    pool = ray.data.ActorPoolStrategy(
        min_size=low,
        max_size=high,
        max_tasks_in_flight_per_actor=TASKS_PER_ACTOR,
        max_concurrent_calls_per_actor=TASKS_PER_ACTOR,
    )
    return {"compute": pool}


def allow_upscaling(ds: ray.data.Dataset, options: dict[str, Any]) -> ray.data.Dataset:
    """``ds`` whose executor adds actors to an autoscaling pool (``options``' ``compute``) once every actor's slots
    are busy (:data:`UPSCALING_UTILISATION`). Set on the dataset's own context, which its execution reads (the
    process-wide context was copied when the dataset was made), and replaced rather than changed in place."""
    pool = options.get("compute")
    if pool is None or pool.min_size == pool.max_size:
        return ds
    current = ds.context.autoscaling_config
    if current.actor_pool_util_upscaling_threshold > UPSCALING_UTILISATION:
        ds.context.autoscaling_config = dataclasses.replace(
            current, actor_pool_util_upscaling_threshold=UPSCALING_UTILISATION
        )
    return ds


def widen_async_batches(batches: int) -> None:
    """Let one Ray Data task run at least ``batches`` async batches at once (Ray's default is 4).

    Ray Data (2.5x-2.60) gives an async ``map_batches`` UDF at most ``DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY`` (4)
    concurrent batches per task and has no per-operator option for it; with batches of 16 documents one task would
    hold 64 whatever ``--max-in-flight`` said (measured: 64 in flight of a budget of 256). The constant is read on the
    driver when the dataset is planned, so raising it before the stage is applied is the one place the workaround
    lives (recheck on a Ray upgrade). It never lowers the value (a user's ``RAY_DATA_DEFAULT_ASYNC_BATCH_UDF_MAX_
    CONCURRENCY`` stays when larger); the client's in-flight budget still bounds what reaches the server.
    """
    from ray.data._internal.planner import plan_udf_map_op

    if plan_udf_map_op.DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY < batches:
        plan_udf_map_op.DEFAULT_ASYNC_BATCH_UDF_MAX_CONCURRENCY = batches
