"""Training progress drawn once, on the driver, from what the workers send through ``ray.train.report``.

The workers' stdout stays in Ray's log files (each worker would print its own copy, and a cluster's workers are
elsewhere). Ray Train calls a :class:`ray.train.UserCallback` on its controller after every report with every
worker's metrics; :class:`ForwardReports` passes them on through a small Ray queue, and a thread on the driver
turns them into one progress bar: steps, loss, examples/s summed over the workers, and validation ROUGE when a
checkpoint carries it.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import ray.train

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


class ForwardReports(ray.train.UserCallback):
    """Runs on the Ray Train controller: puts every round of reports on the driver's queue."""

    def __init__(self, queue):
        self.queue = queue

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        self.queue.put_nowait([dict(m) for m in metrics])


@contextlib.contextmanager
def training_bar(total_steps: int) -> Iterator[ForwardReports]:
    """A progress bar fed while ``trainer.fit()`` runs; yields the callback to give ``RunConfig(callbacks=)``."""
    from ray.util.queue import Empty, Queue

    queue = Queue(actor_options={"num_cpus": 0})
    stop = threading.Event()
    with Progress("training steps", total_steps) as bar:

        def show(reports: list[dict[str, Any]]) -> None:
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
            yield ForwardReports(queue)
        finally:
            stop.set()
            thread.join()
            while not queue.empty():
                show(queue.get_nowait())
            queue.shutdown()
