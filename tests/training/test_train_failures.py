"""Training survives a dead worker (Ray Train restarts the group from the latest checkpoint) and a dead driver
(``lsr train --resume``): the run ends at the requested step, each step once in the history, and the learning rate
of every step is the Noam schedule's value at that step (restored, not restarted)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from lsr.cli.main import main
from lsr.training.checkpoints import STATE_FILE
from lsr.training.schedule import noam_lr
from tests.helpers.train_runs import wait_for_checkpoint

STEPS = 8
#: Two workers, plain fine-tuning (no alignment-target pass), a checkpoint every step: a short, slow-enough run.
ARGS = ["--dataset", "cnndm", "--model", "tiny", "--views", "none", "--workers", "2", "--batch-size", "2",
        "--source-max-tokens", "64", "--target-max-tokens", "32", "--warmup-steps", "4", "--lr-scale", "0.01",
        "--checkpoint-every", "1", "--log-every", "1", "--max-steps", str(STEPS)]  # fmt: skip


def _train_worker_pids() -> list[int]:
    """The pids of this Ray instance's Ray Train worker processes (children of its raylet, titled by their actor)."""
    import psutil
    import ray

    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    found = []
    for child in psutil.Process(raylet).children(recursive=True):
        try:
            if "RayTrainWorker" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def _check_finished_run(output: Path) -> dict:
    """The run reached STEPS once each, with the schedule's lr at every step; its report's metrics."""
    history = [json.loads(line) for line in (output / "history.jsonl").read_text().splitlines()]
    assert [row["step"] for row in history] == list(range(1, STEPS + 1))  # redone steps replace, never duplicate
    for row in history:
        assert row["lr"] == pytest.approx(noam_lr(row["step"], 0.01, 4)), row["step"]
    report = json.loads((output / "train_report.json").read_text())
    assert report["steps"] == STEPS
    state = torch.load(Path(report["latest_checkpoint"]) / STATE_FILE, weights_only=False)
    assert state["step"] == STEPS and state["scheduler"]["last_epoch"] == STEPS  # the schedule's own counter
    return report["metrics"]


def test_a_killed_worker_is_replaced_and_the_run_continues_from_its_checkpoint(
    ray_local, tmp_path, cnndm_path, selection_rows, write_selection
):
    data = write_selection(selection_rows(cnndm_path, 16), tmp_path / "selected")
    output = tmp_path / "run"
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(main(["train", *ARGS, "--data", str(data),
                                                               "--output", str(output)])))
    run.start()
    try:
        wait_for_checkpoint(output / "checkpoints", run.is_alive)
        pids = _train_worker_pids()
        assert len(pids) == 2, pids
        os.kill(pids[-1], signal.SIGKILL)
    finally:
        run.join(timeout=300)
    assert codes == [0]
    metrics = _check_finished_run(output)
    assert 1 <= metrics["resumed_from_step"] < STEPS  # the new worker group restored a checkpoint, not step 0
    assert pids[-1] not in _train_worker_pids()


def test_a_killed_driver_is_resumed_with_resume(ray_local, tmp_path, cnndm_path, selection_rows, write_selection):
    import ray

    data = write_selection(selection_rows(cnndm_path, 16), tmp_path / "selected")
    output = tmp_path / "run"
    common = [*ARGS, "--data", str(data), "--output", str(output)]
    address = ray._private.worker._global_node.address
    driver = subprocess.Popen(
        [sys.executable, "-c", "import sys; from lsr.cli.main import main; sys.exit(main(sys.argv[1:]))", "train",
         *common, "--ray-address", address],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_checkpoint(output / "checkpoints", lambda: driver.poll() is None)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)
    assert not (output / "train_report.json").exists()  # killed before the end

    assert main(["train", *common]) == 2  # the run exists: without --resume it is refused, not overwritten
    assert main(["train", *common, "--resume"]) == 0
    metrics = _check_finished_run(output)
    assert 1 <= metrics["resumed_from_step"] < STEPS
