"""Requests and documents counted where no stage actor's death can take them: a small actor on the driver's node.

The rows count their own requests (the ``requests`` column: every attempt of both calls), so the report's
``requests_sent`` is what the rows that reached the output cost. A stage actor that dies (its node lost, its process
killed) takes the rows it was mining with it; Ray restarts the actor, sends its tasks again and the documents are
mined a second time: the output is still whole, but the requests the dead actor had sent appear nowhere (measured with
a worker node killed on a three-node loopback cluster: 1,152 requests reached the server for the 1,024 calls the
rows record, 64 documents mined twice, none of it in the report).

So the chat clients also count every request as they send it (before it leaves), and the stage counts every
document as a batch starts, into a :class:`RequestTally`: one actor per run, pinned to the driver's node (the head
under ``ray job submit``; a driver whose node dies ends the run anyway), holding no CPU. The counts are
fire-and-forget actor calls, sent ahead of the request they count, so a request the server saw was counted even
if its sender died right after. At the end the job reads the totals: requests sent this run minus the requests of
the rows saved this run are the requests lost with failed actors or nodes, and documents started minus rows saved
are the rows mined again (``MiningReport.requests_lost``, ``rows_mined_again``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class RequestTally:
    """The actor: two counters."""

    def __init__(self) -> None:
        self._requests = 0
        self._documents = 0

    def add(self, requests: int = 0, documents: int = 0) -> None:
        self._requests += requests
        self._documents += documents

    def totals(self) -> tuple[int, int]:
        """(requests sent, documents started) so far."""
        return self._requests, self._documents


@dataclass(frozen=True)
class TallyCounter:
    """What the driver ships to the stage actors (picklable: an actor handle): each call is one fire-and-forget
    message to the tally, never awaited, so counting never slows a request down."""

    handle: Any

    def __call__(self, requests: int = 1) -> None:
        """Count ``requests`` request(s) about to be sent (a chat client's ``on_send``)."""
        self.handle.add.remote(requests=requests)

    def documents(self, count: int) -> None:
        """Count ``count`` documents whose mining starts (a stage batch)."""
        self.handle.add.remote(documents=count)


def start_tally() -> TallyCounter:
    """A new tally actor on the driver's node (no CPU: the head of cluster.yaml has none)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    actor = ray.remote(RequestTally).options(
        num_cpus=0, max_restarts=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)
    )
    return TallyCounter(actor.remote())


def read_tally(counter: TallyCounter, timeout_s: float = 60.0) -> tuple[int, int]:
    """(requests sent, documents started), then the tally actor is ended."""
    import ray

    try:
        return ray.get(counter.handle.totals.remote(), timeout=timeout_s)
    finally:
        end_tally(counter)


def end_tally(counter: TallyCounter) -> None:
    """End the tally actor (it would otherwise live as long as the driver)."""
    import ray

    ray.kill(counter.handle)
