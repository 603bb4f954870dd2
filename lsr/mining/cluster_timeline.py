"""The cluster under a mining run, over time: alive nodes and mining replicas, sampled on the driver.

On an autoscaling cluster the node count is what a run costs and the replica count is what it got for it: both go
into the mining report (``cluster`` in ``OUTPUT.report.json``) and report.html draws them. The sampler reads Ray's
control store (the GCS) directly, the way ``ray.nodes()`` does, so it needs no dashboard (a local Ray has none):
``ray._private.state.actors()`` is the one private call, read through :func:`_actor_table` so that a Ray that
moves it costs the replica column only (recorded as ``None``), never the run.

ray is imported inside the functions: this module is imported by the pipeline, which the CLI loads at start-up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

#: The mining stage's actors carry the stage class in their Ray class name (``MapWorker(MapBatches(DocumentMiner))``).
REPLICA_CLASS = "DocumentMiner"
#: Seconds between samples: an autoscaler acts every few seconds and a node takes tens of seconds to join.
DEFAULT_INTERVAL_S = 2.0


def alive_nodes(nodes: Iterable[Mapping[str, Any]]) -> int:
    """Nodes ``ray.nodes()`` lists as alive (a removed or dead node stays listed, not alive)."""
    return sum(1 for node in nodes if node.get("Alive"))


def alive_replicas(actors: Mapping[str, Mapping[str, Any]], job_id: str | None) -> int:
    """This job's live mining actors in an actor table (``ray._private.state.actors()``'s shape)."""
    return sum(
        1
        for actor in actors.values()
        if actor.get("State") == "ALIVE"
        and REPLICA_CLASS in str(actor.get("ActorClassName", ""))
        and (job_id is None or actor.get("JobID") == job_id)
    )


def _actor_table() -> Mapping[str, Mapping[str, Any]] | None:
    try:
        from ray._private import state

        return state.actors()
    except Exception as err:  # a Ray that moved its private state API: record no replica count
        logger.debug("no actor table (%s): the cluster timeline records nodes only", err)
        return None


def sample() -> dict[str, int | None]:
    """The cluster now: alive nodes and this job's mining replicas (``None`` when Ray cannot say)."""
    import ray

    actors = _actor_table()
    job_id = ray.get_runtime_context().get_job_id()
    return {"nodes": alive_nodes(ray.nodes()), "replicas": None if actors is None else alive_replicas(actors, job_id)}


class ClusterTimeline:
    """A daemon thread that samples the cluster every ``interval_s`` seconds while a run mines.

    Only changes are kept (plus the first and the last sample), so a run of hours on a steady cluster stays a few
    lines: each entry is ``{"t": seconds since the run started, "nodes": N, "replicas": R}``."""

    def __init__(self, started: float, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self._started = started
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples: list[dict[str, float | int | None]] = []

    def __enter__(self) -> ClusterTimeline:
        self._record()
        self._thread = threading.Thread(target=self._run, name="lsr-cluster-timeline", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if exc_type is None:  # a run stopped by a signal or an error ends now, without asking Ray once more
            self._record(force=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._record()

    def _record(self, force: bool = False) -> None:
        try:
            now = sample()
        except Exception as err:  # the driver lost the cluster for a moment: the next sample will say
            logger.debug("cluster sample failed: %s", err)
            return
        last = self.samples[-1] if self.samples else None
        if force or last is None or (last["nodes"], last["replicas"]) != (now["nodes"], now["replicas"]):
            self.samples.append({"t": round(time.monotonic() - self._started, 1), **now})


def describe(samples: list[Mapping[str, Any]]) -> str | None:
    """One line for the report: the node and replica counts' first, peak and last values (None: no samples)."""
    if not samples:
        return None
    parts = []
    for key in ("nodes", "replicas"):
        values = [s[key] for s in samples if s.get(key) is not None]
        if values:
            parts.append(f"{key} {values[0]} -> peak {max(values)} -> {values[-1]}")
    return ", ".join(parts) or None
