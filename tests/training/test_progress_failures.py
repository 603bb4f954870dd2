"""What the driver makes of Ray Train's failure events (no Ray needed): the failed worker described from Ray's error,
one line for the user, and the train report's account of restarts and steps done twice."""

from __future__ import annotations

from ray.exceptions import ActorUnavailableError
from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError

from lsr.training.progress import Restarts, describe_failure

NODE = "167d3e04fd6f88c1517e841cfbd95d6de795ba10be95922b05228820"
#: What Ray Train 2.x says of a worker it can no longer reach (its Worker repr names the node).
INFO = (f"A worker health check failed.\nWorker info: Worker(\n  metadata=ActorMetadata(\n    hostname='vm',\n"
        f"    node_id='{NODE}',\n    node_ip='10.0.0.7',\n    pid=20326,\n  ),\n)")  # fmt: skip


def test_a_worker_of_a_lost_node_is_described_by_rank_node_and_ray_s_error():
    unreachable = ActorUnavailableError("The actor is temporarily unavailable: RpcError: Connection refused", None)
    failure = describe_failure(1, WorkerHealthCheckFailedError(INFO, failure=unreachable))
    assert {k: failure[k] for k in ("rank", "node_id", "node_ip", "kind", "lost", "reason")} == {
        "rank": 1, "node_id": NODE, "node_ip": "10.0.0.7", "kind": "ActorUnavailableError", "lost": True,
        "reason": "unreachable",
    }  # fmt: skip
    died = RuntimeError("The actor died because its node has died. Node Id: " + NODE)
    assert describe_failure(0, WorkerHealthCheckFailedError(INFO, failure=died))["reason"] == "its node died"
    process = RuntimeError("The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR")
    assert describe_failure(0, WorkerHealthCheckFailedError(INFO, failure=process))["reason"] == "its process died"


def test_an_error_of_the_training_code_is_a_failure_not_a_lost_worker():
    failure = describe_failure(0, ValueError("loss is nan\nmore detail"))
    assert failure["lost"] is False and failure["kind"] == "ValueError" and failure["reason"] == "loss is nan"
    assert failure["node_id"] is None


def test_a_restart_is_told_in_one_line_and_counted_for_the_report():
    restarts = Restarts(max_failures=1)
    for step in (1, 2, 3, 4, 5):
        restarts.reported([{"step": step}, {"step": step}], checkpointed=step % 3 == 0)
    lost = describe_failure(1, WorkerHealthCheckFailedError(INFO, failure=ActorUnavailableError("refused", None)))
    collateral = describe_failure(0, RuntimeError("Connection closed by peer"))
    line = restarts.failed([collateral, lost])  # the survivor's broken ring is not what was lost
    assert line == (
        "  lost worker rank 1 on node 167d3e04 (10.0.0.7): unreachable (ActorUnavailableError); "
        "Ray Train restarts the workers from the checkpoint of step 3, 2 step(s) done again (restart 1)"
    )
    restarts.reported([{"step": 4, "resumed_from_step": 3}, {"step": 4}], checkpointed=False)
    summary = restarts.summary()
    assert summary["repeated_steps"] == 2
    [restart] = summary["restarts"]
    assert (restart["after_step"], restart["resumed_from_step"]) == (5, 3)
    assert restart["error"] == "lost worker rank 1 on node 167d3e04 (10.0.0.7): unreachable (ActorUnavailableError)"
    assert [w["rank"] for w in restart["workers"]] == [1]

    # A second failure with no restart left says so; before any checkpoint the run restarts from the start.
    assert restarts.failed([lost]).endswith("no restart left (--max-failures 1): training stops")
    early = Restarts(max_failures=3)
    early.reported([{"step": 1}], checkpointed=False)
    assert "restarts the workers from the start (no checkpoint yet), 1 step(s) done again" in early.failed([lost])
    assert Restarts().summary() == {"restarts": [], "repeated_steps": 0}
