"""``lsr teacher --resume``: a pass SIGKILLed midway continues from Ray Data's job checkpoint. The rows it wrote
stay, the others are scored, every id ends up written once, and the top-k is that of an uninterrupted pass. Also the
refusals around it, and the same checkpointed write to the loopback S3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lsr.core.errors import InputError
from lsr.data.checkpointed_write import committed_files, committed_ids
from lsr.data.layout import TEACHER_CHECKPOINT, TEACHER_REPORT, TEACHER_SETTINGS
from tests.helpers.paths import REPO

COPIES = 3  # the 40 shipped rows, three times over under new ids: a pass long enough to be killed midway
ROWS_PER_FILE = 4


@pytest.fixture()
def selection(tmp_path, cnndm_path, selection_rows, write_selection) -> tuple[Path, list[dict]]:
    base = selection_rows(cnndm_path, 40)
    rows = [{**row, "id": f"{row['id']}-{copy}"} for copy in range(COPIES) for row in base]
    return write_selection(rows, tmp_path / "selected"), rows


def teacher_args(data: Path, output: Path | str, teacher: Path, *extra: str) -> list[str]:
    return ["teacher", "--data", str(data), "--output", str(output), "--dataset", "cnndm", "--teacher", str(teacher),
            "--top-k", "3", "--target-max-tokens", "48", "--source-max-tokens", "96", "--batch-size", "1",
            "--rows-per-file", str(ROWS_PER_FILE), *extra]


def kill_midway(args: list[str], checkpoint: Path, commits: int) -> None:
    """Run ``lsr teacher`` in its own process (its own local Ray) and SIGKILL it, Ray and all, once ``commits``
    write tasks have committed."""
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONPATH": str(REPO)}
    job = subprocess.Popen([sys.executable, "-m", "lsr.cli", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and job.poll() is None and len(committed_files(str(checkpoint))) < commits:
            time.sleep(0.05)
        assert job.poll() is None, job.communicate()[0].decode()[-3000:]
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()


def teacher_columns(kept: Path) -> dict[str, tuple]:
    table = pq.read_table(kept).to_pylist()
    return {r["id"]: (r["teacher_labels"], r["teacher_topk_ids"], r["teacher_topk_logprobs"]) for r in table}


def test_a_killed_pass_resumes_from_the_checkpoint_and_writes_every_row_once(
    ray_local, tmp_path, selection, teacher, capsys
):
    from lsr.cli.main import main

    data, rows = selection
    out = tmp_path / "scored"
    checkpoint = out / TEACHER_CHECKPOINT
    kill_midway(teacher_args(data, out, teacher), checkpoint, commits=3)
    assert not (out / TEACHER_REPORT).exists()
    written = committed_ids(str(checkpoint))
    assert 3 * ROWS_PER_FILE <= written < len(rows), written
    assert (out / TEACHER_SETTINGS).exists()

    # Without --resume the interrupted pass is not overwritten by accident; other settings cannot continue it.
    assert main(teacher_args(data, out, teacher)) == 2
    assert "pass --resume to continue it" in capsys.readouterr().err
    assert main(teacher_args(data, out, teacher, "--resume", "--top-k", "4")) == 2
    assert "top_k" in capsys.readouterr().err

    assert main(teacher_args(data, out, teacher, "--resume")) == 0
    assert f"({written} of them by the interrupted pass)" in capsys.readouterr().out
    kept = pq.read_table(out / "kept", columns=["id"]).column("id").to_pylist()
    assert Counter(kept) == Counter(r["id"] for r in rows)  # every id once: the killed tasks' files were removed
    report = (out / TEACHER_REPORT).read_text()
    assert f'"resumed_rows": {written}' in report and f'"examples": {len(rows)}' in report
    assert not checkpoint.exists() and not (out / TEACHER_SETTINGS).exists()  # nothing left to resume
    from lsr.core.config import resolve
    from lsr.kd.teacher_pass import TeacherPassConfig, open_pass_output

    finished = resolve(TeacherPassConfig, {"data": str(data), "output": str(out), "dataset": "cnndm",
                                           "teacher": str(teacher), "resume": True})
    with pytest.raises(InputError, match="holds no interrupted teacher pass"):
        open_pass_output(finished)

    whole = tmp_path / "whole"
    assert main(teacher_args(data, whole, teacher)) == 0
    assert teacher_columns(out / "kept") == teacher_columns(whole / "kept")  # the same top-k, row by row


def test_a_resumed_pass_without_a_spare_cpu_is_refused_before_it_can_hang(monkeypatch):
    import ray

    from lsr.data.checkpointed_write import check_spare_cpus

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    with pytest.raises(InputError, match="needs 3 CPUs"):
        check_spare_cpus(1, "--resume")
    check_spare_cpus(0, "--resume")


def test_the_checkpointed_write_works_on_s3(ray_local, tmp_path, selection, teacher, bucket):
    from lsr.cli.main import main

    data, rows = selection
    assert main(teacher_args(data, "s3://runs/kd", teacher)) == 0
    keys = bucket.keys("kd/")
    assert TEACHER_REPORT in keys and not any(k.startswith((TEACHER_CHECKPOINT, TEACHER_SETTINGS)) for k in keys)
    assert sum(k.startswith("kept/") for k in keys) == len(rows) // ROWS_PER_FILE
