"""Training progress drawn once, on the driver, from what the workers send through ``ray.train.report``.

The workers' stdout stays in Ray's log files (each worker would print its own copy, and a cluster's workers are
elsewhere). Ray Train calls a :class:`ray.train.UserCallback` on its controller after every report with every
worker's metrics; :class:`ForwardReports` passes them on through a small Ray queue, and a thread on the driver
turns them into one progress bar: steps, loss, examples/s summed over the workers, and validation ROUGE when a
checkpoint carries it.

When workers fail (a worker process or its whole node lost), Ray Train calls the callback's ``after_exception``
before it restarts the worker group from the latest checkpoint; the driver prints one line saying which worker
(rank, node) was lost, why, and from which step training resumes, and :class:`Restarts` keeps the account for the
train report (``restarts``, ``repeated_steps``: the steps done twice because they came after the last checkpoint).
The queue lives on the driver's node, so that losing any other node loses no progress.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
import ray.train
from ray.exceptions import RayActorError
from ray.util.queue import Empty, Queue
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from lsr.core.console import Progress


def progress_fields(reports: Sequence[dict[str, Any]]) -> tuple[int | None, dict[str, str]]:
    """``(step, fields)`` for the bar from one report of every worker (rank order): loss averaged over the
    workers, examples/s summed (each worker counts its own), validation ROUGE-1/2/Lsum when present."""
    if not reports:
        return None, {}
    first = reports[0]
    fields: dict[str, str] = {}
    losses = [r["loss"] for r in reports if isinstance(r.get("loss"), (int, float)) and math.isfinite(r["loss"])]
    if losses:
        # A checkpoint's report (the one with "epoch") carries the mean loss since the previous checkpoint
        # (lsr.training.loop), the others the last step's: named apart so the bar does not seem to jump back.
        fields["mean loss" if "epoch" in first else "loss"] = f"{sum(losses) / len(losses):.3f}"
    speeds = [r["examples_per_s"] for r in reports if isinstance(r.get("examples_per_s"), (int, float))]
    if speeds:
        fields["ex/s"] = f"{sum(speeds):.1f}"
    rouge = [first.get(f"val_{k}") for k in ("rouge1", "rouge2", "rougeLsum")]
    if all(isinstance(v, (int, float)) for v in rouge):
        fields["val R-1/2/L"] = "/".join(f"{100 * v:.1f}" for v in rouge)
    step = first.get("step")
    return (int(step) if isinstance(step, (int, float)) else None), fields


def _found(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


def describe_failure(rank: int, error: BaseException) -> dict[str, Any]:
    """One failed worker as plain values: its rank, its node (id and IP, when Ray's error names them), the error's
    kind, whether the worker is gone (``lost``: its process or node died, or it stopped answering) and why.

    Ray Train wraps a worker it can no longer reach in a ``WorkerHealthCheckFailedError`` (whose text holds the
    worker's ``node_id`` and ``node_ip``) around Ray's own error: ``ActorDiedError`` says whether the node or only
    the process died; ``ActorUnavailableError`` (the worker refuses connections) is what a killed node usually
    gives first, before Ray's health check has declared the node dead. An exception raised by the training code
    itself comes as it was raised.
    """
    cause = getattr(error, "health_check_failure", None)  # WorkerHealthCheckFailedError: the worker is unreachable
    lost = cause is not None or isinstance(error, RayActorError) or "HealthCheck" in type(error).__name__
    cause = cause if cause is not None else error
    text = f"{error}\n{cause}"
    if not lost:
        reason = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")[:200]
    elif re.search(r"\bits node (has )?died", text):  # Ray: "The actor died because its node has died."
        reason = "its node died"
    elif "worker process has died" in text:
        reason = "its process died"
    elif "HealthCheckTimeout" in type(error).__name__:
        reason = "it stopped answering"
    else:  # e.g. ActorUnavailableError: its process, or its node, refuses connections (the first sign of a dead node)
        reason = "unreachable"
    return {
        "rank": rank,
        "node_id": _found(r"node_id='([0-9a-f]+)'", text) or _found(r"Node Id: ([0-9a-f]+)", text),
        "node_ip": _found(r"node_ip='([^']+)'", text) or _found(r"\bip: (\S+)", text),
        "kind": type(cause).__name__,
        "lost": lost,
        "reason": reason,
        "message": str(error)[-2000:],  # Ray's own words, for the train report
    }


class ForwardReports(ray.train.UserCallback):
    """Runs on the Ray Train controller: puts every round of reports, and every failure of workers, on the driver's
    queue (``("report", metrics, checkpointed)`` and ``("failure", [describe_failure(...), ...])``)."""

    def __init__(self, queue):
        self.queue = queue

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        self.queue.put_nowait(("report", [dict(m) for m in metrics], checkpoint is not None))

    def after_exception(self, run_context, worker_exceptions: dict[int, Exception]) -> None:
        failures = [describe_failure(rank, error) for rank, error in sorted(worker_exceptions.items())]
        self.queue.put_nowait(("failure", failures))


@dataclass
class Restarts:
    """The driver's account of a run's failures: the last step reported, the last checkpoint's step, and one entry
    per failure of the worker group (``after_step``: the last step reported before it; ``resumed_from_step``: the
    checkpoint the next attempt restored, 0 when there was none yet; ``error``; ``workers``: the failed ranks)."""

    max_failures: int = 0
    last_step: int = 0
    checkpoint_step: int = 0
    restarts: list[dict[str, Any]] = field(default_factory=list)
    _waiting: dict[str, Any] | None = None  # the latest restart, until the next attempt's first report

    def reported(self, reports: list[dict[str, Any]], checkpointed: bool) -> None:
        step = reports[0].get("step") if reports else None
        if not isinstance(step, (int, float)):
            return
        if self._waiting is not None:  # the new attempt says which step it restored (lsr.training.loop)
            resumed = reports[0].get("resumed_from_step")
            if isinstance(resumed, (int, float)):
                self._waiting["resumed_from_step"] = int(resumed)
            self._waiting = None
        self.last_step = int(step)
        if checkpointed:
            self.checkpoint_step = int(step)

    def failed(self, failures: list[dict[str, Any]]) -> str:
        """Record one failure of the worker group; the line that tells the user."""
        lost = [f for f in failures if f["lost"]] or failures  # the others are usually collateral (a broken ring)
        error = "; ".join(_failure_text(f) for f in lost)
        restart = {"after_step": self.last_step, "resumed_from_step": self.checkpoint_step, "error": error,
                   "workers": lost}  # fmt: skip
        self.restarts.append(restart)
        self._waiting = restart
        count = len(self.restarts)
        if 0 <= self.max_failures < count:
            return f"  {error}; no restart left (--max-failures {self.max_failures}): training stops"
        start = f"the checkpoint of step {self.checkpoint_step}"
        if not self.checkpoint_step:
            start = "the start (no checkpoint yet)"
        again = self.last_step - self.checkpoint_step
        redo = f", {again} step(s) done again" if again > 0 else ""
        return f"  {error}; Ray Train restarts the workers from {start}{redo} (restart {count})"

    def summary(self) -> dict[str, Any]:
        """The train report's fields: every restart, and the steps done twice because they came after the
        checkpoint restored (counted up to the last step the driver heard of before each failure)."""
        repeated = sum(max(0, r["after_step"] - r["resumed_from_step"]) for r in self.restarts)
        return {"restarts": self.restarts, "repeated_steps": repeated}


def _failure_text(failure: dict[str, Any]) -> str:
    """``lost worker rank 1 on node 4d6d8032 (127.0.0.1): its node died (ActorDiedError)``."""
    where = ""
    if failure.get("node_id"):
        where = f" on node {failure['node_id'][:8]}"
        if failure.get("node_ip"):
            where += f" ({failure['node_ip']})"
    if failure["lost"]:
        return f"lost worker rank {failure['rank']}{where}: {failure['reason']} ({failure['kind']})"
    return f"worker rank {failure['rank']}{where} failed: {failure['kind']}: {failure['reason']}"


@dataclass
class TrainingFeed:
    """What :func:`training_bar` yields: the callback for ``RunConfig(callbacks=)`` and the driver's account of
    restarts (read it once ``fit()`` has returned)."""

    callback: ForwardReports
    restarts: Restarts


@contextlib.contextmanager
def training_bar(total_steps: int, max_failures: int = 0) -> Iterator[TrainingFeed]:
    """A progress bar fed while ``trainer.fit()`` runs, with a line for each failure of the workers."""
    # On the driver's node (as Ray Train's controller is): a queue on a node that dies would take the bar with it.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    queue = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
    restarts = Restarts(max_failures=max_failures)
    stop = threading.Event()
    with Progress("training steps", total_steps) as bar:

        def show(item: tuple) -> None:
            if item[0] == "failure":
                bar.note(restarts.failed(item[1]))
                return
            _, reports, checkpointed = item
            restarts.reported(reports, checkpointed)
            step, fields = progress_fields(reports)
            bar.fields = {}  # this round's figures only (a checkpoint's mean loss is not the last step's loss)
            bar.update(step, **fields)

        def drain() -> None:
            while not stop.is_set():
                try:
                    show(queue.get(timeout=0.5))
                except Empty:
                    continue

        thread = threading.Thread(target=drain, name="lsr-train-progress", daemon=True)
        thread.start()
        try:
            yield TrainingFeed(ForwardReports(queue), restarts)
        finally:
            stop.set()
            thread.join()
            while not queue.empty():
                show(queue.get_nowait())
            queue.shutdown()
