"""A node dies under training: on a cluster of raylets on 127.0.0.1, ``lsr train`` with two workers on two
nodes loses one node (every process of it killed at once) after a checkpoint. Ray Train restarts the worker group on
the surviving and the spare node from the latest checkpoint, the run finishes the requested steps with the learning
rate schedule continued, the user is told in one line what was lost and from which step training resumed, and the
train report counts the restart and the steps done twice.

The nodes are cluster.yaml's ``train_gpu`` type (``tests/helpers/cluster.py``), shrunk to one core each. The checkpoints
are on a local folder that every node sees, as all of them run on this machine; a real cluster needs storage every
node reaches (``--storage-path s3://...`` or a shared file system).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lsr.training.schedule import noam_lr
from tests.helpers.train_runs import wait_for_checkpoint

pytestmark = pytest.mark.multinode

STEPS = 9
EVERY = 3
#: Two workers of one CPU each, plain fine-tuning (no alignment-target pass), a checkpoint every EVERY steps.
ARGS = ["--dataset", "cnndm", "--model", "tiny", "--views", "none", "--workers", "2", "--batch-size", "2",
        "--source-max-tokens", "64", "--target-max-tokens", "32", "--warmup-steps", "4", "--lr-scale", "0.01",
        "--checkpoint-every", str(EVERY), "--log-every", "1", "--max-steps", str(STEPS),
        "--max-failures", "1"]  # fmt: skip


def test_a_lost_node_is_replaced_and_the_run_resumes_from_its_checkpoint(
    loopback_cluster, tmp_path, cnndm_path, selection_rows, write_selection
):
    # cluster.yaml's training nodes, one core each: two for the workers, one spare for the restarted group.
    cluster = loopback_cluster([("train_gpu", 1)] * 3)
    data = write_selection(selection_rows(cnndm_path, 16), tmp_path / "selected")
    output = tmp_path / "run"
    log = tmp_path / "driver.log"
    with log.open("wb") as sink:
        driver = subprocess.Popen(
            [sys.executable, "-c", "import sys; from lsr.cli.main import main; sys.exit(main(sys.argv[1:]))",
             "train", *ARGS, "--data", str(data), "--output", str(output), "--ray-address", cluster.address],
            stdout=sink, stderr=subprocess.STDOUT, env=cluster.env(),
        )
        try:
            wait_for_checkpoint(output / "checkpoints", lambda: driver.poll() is None)
            hosts = cluster.actor_nodes("RayTrainWorker")
            assert len(hosts) == 2, "the two workers run on two nodes"
            lost = hosts[-1]
            cluster.kill_node(lost)
            code = driver.wait(timeout=300)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait(timeout=60)
    said = log.read_text(errors="replace")
    assert code == 0, said[-4000:]

    report = json.loads((output / "train_report.json").read_text())
    assert report["steps"] == STEPS
    [restart] = report["restarts"]
    [worker] = restart["workers"]
    # The worker of the killed node, found lost: Ray says its node died, or (first, usually) that it is unreachable.
    assert worker["node_id"] == lost and worker["node_ip"] == "127.0.0.1" and worker["lost"]
    assert worker["kind"] in ("ActorDiedError", "ActorUnavailableError")
    reason = worker["reason"]
    assert reason in ("its node died", "its process died", "unreachable")
    resumed = restart["resumed_from_step"]
    assert resumed >= EVERY and resumed % EVERY == 0  # a checkpoint's step, not the start
    assert restart["after_step"] >= resumed
    assert report["repeated_steps"] == restart["after_step"] - resumed
    assert report["metrics"]["resumed_from_step"] == resumed

    # The steps continue after the resume: each step once, with the Noam schedule's rate at that step (restored).
    history = [json.loads(line) for line in (output / "history.jsonl").read_text().splitlines()]
    assert [row["step"] for row in history] == list(range(1, STEPS + 1))
    for row in history:
        assert row["lr"] == pytest.approx(noam_lr(row["step"], 0.01, 4)), row["step"]

    # One line tells the user what was lost and from where training resumed; Ray's node notices stay in its logs.
    told = [line for line in said.splitlines() if "lost worker" in line]
    assert told == [
        f"  lost worker rank {worker['rank']} on node {lost[:8]} (127.0.0.1): {reason} ({worker['kind']}); "
        f"Ray Train restarts the workers from the checkpoint of step {resumed}"
        + (f", {report['repeated_steps']} step(s) done again" if report["repeated_steps"] else "")
        + " (restart 1)"
    ], said
    assert "(raylet)" not in said and "marked dead" not in said
    finals = [line for line in said.splitlines() if f"{STEPS}/{STEPS}" in line]
    assert len(finals) == 1, said  # the final progress line, once
