"""``ray job submit`` end to end, as a cluster user runs the stages: a Ray head of the test's own (127.0.0.1, token
authentication, its own ports), mine (http engine against the loopback OpenAI-compatible stub) -> select -> train
(tiny MWF student, 2 workers) -> evaluate, each submitted through the Job SDK with a runtime environment of the
working directory (``ray_jobs/`` entrypoints, exactly the README's ``ray job submit --working-dir .`` lines), polled
to SUCCEEDED; then the artifacts and the job logs are checked. A job that fails surfaces its last log lines.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers.openai_stub_server import OpenAIStub
from tests.helpers.paths import REPO
from tests.helpers.ray_head import RayHead, start_head

SAMPLE = "lsr/samples/cnndm_sample.jsonl"  # relative: the job reads the working directory's copy
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class JobFailed(AssertionError):
    """A job ended other than SUCCEEDED; the message holds its status and the last lines of its log."""


@pytest.fixture(scope="module")
def head():
    head = start_head(num_cpus=4)
    try:
        yield head
    finally:
        head.stop()
        assert head.pids() == [], "the test's Ray head left processes behind"


@pytest.fixture(scope="module")
def client(head: RayHead):
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + 90
    while True:
        try:
            return JobSubmissionClient(head.dashboard, headers=head.auth_headers)
        except Exception:  # noqa: BLE001 (the dashboard is still starting)
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def submit(client, entrypoint: list[str]) -> str:
    return client.submit_job(
        entrypoint=" ".join(entrypoint),
        # Ray leaves .git/ and .venv/ out by itself, and what .gitignore names
        runtime_env={"working_dir": str(REPO), "excludes": ["*.egg-info/", "__pycache__/"]},
    )


def wait_for(client, job_id: str, timeout_s: float = 600, tail_lines: int = 25) -> str:
    """Poll the job to a terminal status; return its log when SUCCEEDED, else raise with its last lines."""
    from ray.job_submission import JobStatus

    deadline = time.monotonic() + timeout_s
    status = client.get_job_status(job_id)
    while str(status.value if isinstance(status, JobStatus) else status) not in TERMINAL:
        if time.monotonic() > deadline:
            client.stop_job(job_id)
            last = _tail(client, job_id, tail_lines)
            raise JobFailed(f"job {job_id} still {status} after {timeout_s:.0f} s:\n{last}")
        time.sleep(1)
        status = client.get_job_status(job_id)
    logs = client.get_job_logs(job_id)
    if str(status.value if isinstance(status, JobStatus) else status) != "SUCCEEDED":
        info = client.get_job_info(job_id)
        raise JobFailed(f"job {job_id} {status} ({info.message}); its last lines:\n{_tail(client, job_id, tail_lines)}")
    return logs


def _tail(client, job_id: str, lines: int) -> str:
    return "\n".join(client.get_job_logs(job_id).splitlines()[-lines:])


def test_the_head_refuses_a_client_without_the_token(head: RayHead, client):
    from ray.job_submission import JobSubmissionClient

    with pytest.raises(Exception, match="(?i)auth|token|401|403"):
        JobSubmissionClient(head.dashboard).list_jobs()


def test_mine_select_train_evaluate_as_jobs(head: RayHead, client, tmp_path: Path):
    mined, selected, train, evaluation = (tmp_path / name for name in ("mined", "selected", "train", "eval"))
    with OpenAIStub("cnndm", instant=True) as stub:
        logs = wait_for(client, submit(client, [
            "python", "ray_jobs/lsr_mine.py", "--input", SAMPLE, "--output", str(mined), "--dataset", "cnndm",
            "--engine", "http", "--url", stub.url, "--model", "m", "--api-key-env", "LSR_TEST_NO_KEY",
            "--limit", "12", "--max-in-flight", "8",
        ]))
    report = json.loads(Path(f"{mined}.report.json").read_text())
    assert (report["done"], report["failed"], report["complete"]) == (12, 0, True)
    assert "mined 12/12 documents (complete)" in logs

    logs = wait_for(client, submit(client, [
        "python", "ray_jobs/lsr_select.py", "--input", str(mined), "--output", str(selected), "--dataset", "cnndm",
        "--threshold", "1.0",  # the stub's canned summaries share no bigram with the gold ones (Score1 = 1)
    ]))
    kept = json.loads((selected / "report.json").read_text())["kept"]
    assert kept > 0 and "kept" in logs

    logs = wait_for(client, submit(client, [
        "python", "ray_jobs/lsr_train.py", "--data", str(selected), "--output", str(train), "--dataset", "cnndm",
        "--model", "tiny", "--workers", "2", "--batch-size", "2", "--max-steps", "2", "--source-max-tokens", "64",
        "--target-max-tokens", "32", "--rationale-max-tokens", "32", "--warmup-steps", "2", "--checkpoint-every", "1",
        "--recompute-modules",
    ]))
    train_report = json.loads((train / "train_report.json").read_text())
    assert train_report["steps"] == 2 and (train / "model" / "config.json").is_file()
    assert train_report["config"]["recompute_modules"] is True
    assert "trained 2 steps" in logs

    logs = wait_for(client, submit(client, [
        "python", "ray_jobs/lsr_evaluate.py", "--model", str(train / "model"), "--data", SAMPLE, "--output",
        str(evaluation), "--dataset", "cnndm", "--limit", "2", "--no-bertscore", "--no-similarity",
        "--latency-batches", "0", "--num-beams", "1", "--max-new-tokens", "4",
    ]))
    results = json.loads((evaluation / "results.json").read_text())
    assert results["models"][0]["path"] == str(train / "model") and "rouge1" in json.dumps(results)
    assert "lsr evaluate" in logs


def test_a_failed_job_surfaces_its_last_error_lines(client, tmp_path: Path):
    job = submit(client, ["python", "ray_jobs/lsr_select.py", "--input", str(tmp_path / "nothing-here"),
                          "--output", str(tmp_path / "selected"), "--dataset", "cnndm"])
    with pytest.raises(JobFailed, match=r"FAILED[\s\S]*lsr select: error: .*nothing-here: no such file or directory"):
        wait_for(client, job)
