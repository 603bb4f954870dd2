"""What a person sees: short stage output without Ray's noise, one bar, a local Ray unless an address is given."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lsr.core import console, ray_utils
from lsr.training.progress import progress_fields
from tests.helpers.paths import REPO, SAMPLES

SAMPLE = SAMPLES / "cnndm_sample.jsonl"
#: Lines that only Ray (or a library under it) prints; none may reach a quiet command's terminal.
RAY_NOISE = (
    "INFO",
    "Started a local Ray instance",
    "Running Dataset",
    "(pid=",
    "logging_progress",
    "Token authentication",
    "streaming_executor",
    "Execution plan",
    "RayDeprecationWarning",
)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_in_a_pipe_prints_its_final_state_once():
    stream = io.StringIO()
    with console.Progress("documents", total=4, stream=stream) as bar:
        for _ in range(4):
            bar.advance(1, loss="1.0")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "documents [########################] 4/4" in lines[0] and "loss 1.0" in lines[0]


def test_bar_in_a_pipe_does_not_repeat_a_final_state_its_heartbeat_printed(monkeypatch):
    monkeypatch.setattr(console, "HEARTBEAT_S", 0.0)  # every update is a heartbeat line
    stream = io.StringIO()
    with console.Progress("steps", total=2, stream=stream) as bar:
        bar.update(1)
        bar.update(2, loss="1.0")
    lines = stream.getvalue().splitlines()
    assert [line.split("]")[1].strip() for line in lines] == ["0/2  0:00", "1/2  0:00", "2/2  loss 1.0  0:00"]


def test_a_note_is_a_line_of_its_own_above_the_bar():
    stream = _Tty()
    with console.Progress("steps", total=2, stream=stream) as bar:
        bar.update(1)
        bar.note("worker lost")
        bar.update(2)
    assert "\x1b[2Kworker lost\n" in stream.getvalue()
    piped = io.StringIO()
    with console.Progress("steps", total=2, stream=piped) as bar:
        bar.note("worker lost")
        bar.update(2)
    assert piped.getvalue().splitlines()[0] == "worker lost"


def test_bar_on_a_terminal_redraws_one_line_in_place():
    stream = _Tty()
    with console.Progress("steps", total=2, stream=stream) as bar:
        bar.update(1)
        bar.update(2)
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("2/2  0:00\n") and "\r" in text


def test_training_bar_fields_come_from_every_workers_report():
    reports = [
        {"step": 20, "loss": 2.0, "examples_per_s": 5.0, "val_rouge1": 0.3, "val_rouge2": 0.1, "val_rougeLsum": 0.2},
        {"step": 20, "loss": 4.0, "examples_per_s": 7.0},
    ]
    step, fields = progress_fields(reports)
    assert step == 20
    assert fields == {"loss": "3.000", "ex/s": "12.0", "val R-1/2/L": "30.0/10.0/20.0"}
    assert progress_fields([]) == (None, {})
    assert progress_fields([{"step": 100, "epoch": 4, "loss": 1.5}])[1] == {"mean loss": "1.500"}


class _FakeRay:
    def __init__(self):
        self.calls: list[dict] = []

    def is_initialized(self) -> bool:
        return bool(self.calls)

    def init(self, **kwargs):
        self.calls.append(kwargs)


@pytest.fixture
def fake_ray(monkeypatch):
    """The real ``ray`` module with ``init`` and ``is_initialized`` recorded instead of run. (Not a stand-in module
    in ``sys.modules``: submodules imported while it stood there would stay half-made for every later test.)"""
    import ray

    fake = _FakeRay()
    monkeypatch.setattr(ray, "init", fake.init)
    monkeypatch.setattr(ray, "is_initialized", fake.is_initialized)
    monkeypatch.setattr(console, "quiet_ray", lambda: None)
    monkeypatch.setattr(console, "ray_started", lambda address: None)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv(console.VERBOSE_ENV, "0")
    return fake


def test_init_ray_starts_a_local_instance_and_never_joins_one_by_accident(fake_ray):
    ray_utils.init_ray(num_cpus=2)
    ray_utils.init_ray(address="ray://elsewhere:10001")  # already up: nothing happens
    assert len(fake_ray.calls) == 1
    call = fake_ray.calls[0]
    assert call["address"] == "local" and call["num_cpus"] == 2 and call["include_dashboard"] is False
    assert call["log_to_driver"] is False


def test_init_ray_joins_the_address_it_is_given_or_ray_address(fake_ray, monkeypatch):
    ray_utils.init_ray(address="10.0.0.1:6379")
    assert fake_ray.calls[-1]["address"] == "10.0.0.1:6379"
    fake_ray.calls.clear()
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.2:6379")
    ray_utils.init_ray()
    assert fake_ray.calls[-1]["address"] == "10.0.0.2:6379"


def test_verbose_forwards_the_workers_output(fake_ray):
    console.set_verbose(True)
    ray_utils.init_ray()
    assert fake_ray.calls[-1]["log_to_driver"] is True


def _lsr(*argv: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    for name in ("RAY_ADDRESS", console.VERBOSE_ENV, "RAY_DATA_DISABLE_PROGRESS_BARS"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "lsr.cli", *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )


def test_a_quiet_stage_prints_its_header_figures_and_summary_only(tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(SAMPLE.read_text().splitlines()[:5]) + "\n")
    done = _lsr("data", "stats", str(docs), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).splitlines()
    assert lines[0] == f"lsr data stats: {docs}"
    assert any(line.startswith("examples") and line.split()[-1] == "5" for line in lines)
    noise = [line for line in lines if any(mark in line for mark in RAY_NOISE)]
    assert not noise, noise
    assert any(line.startswith("  running on a local Ray; its logs: /") for line in lines)
    assert len(lines) <= 8, lines


def test_parquet_rows_counts_finished_files_and_skips_broken_ones(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    out.mkdir()
    assert console.parquet_rows(str(tmp_path / "absent")) == 0
    pq.write_table(pa.table({"id": ["a", "b", "c"]}), out / "one.parquet")
    (out / "cut-short.parquet").write_bytes(b"PAR1 not finished")
    seen: dict = {}
    assert console.parquet_rows(str(out), seen) == 3
    pq.write_table(pa.table({"id": ["d"]}), out / "two.parquet")
    assert console.parquet_rows(str(out), seen) == 4 and len(seen) == 2


def test_verbose_is_accepted_before_or_after_the_stage():
    from lsr.cli.main import build_parser

    parser = build_parser()
    select = ["select", "--input", "m", "--output", "s", "--dataset", "cnndm"]
    assert parser.parse_args(["--verbose", *select]).verbose is True
    assert parser.parse_args([*select, "--verbose"]).verbose is True
    assert parser.parse_args(select).verbose is False
