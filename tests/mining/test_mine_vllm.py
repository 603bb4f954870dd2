"""`lsr mine --engine vllm --device cpu` end to end on a real vLLM engine (the tiny random Llama), and a replica
whose engine-core process is killed mid-run.

Through the whole stage: the index pass, the Ray Data actor stage (one replica: one actor, one engine for both
calls of every document, prefix caching on), the owned output folder and the report. The kill is the hard way
(SIGKILL to vLLM's engine-core process of the replica, found below the ``lsr mine`` process): every call in flight
fails with vLLM's ``EngineDeadError``; the replica rebuilds its engine and sends those calls again, so no row
fails, every id is written exactly once, and the run exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers.paths import REPO
from tests.helpers.processes import command_line, descendants

pytestmark = pytest.mark.vllm


def _command(tiny_llama: Path, out: Path, limit: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lsr.cli", "mine", "--input", str(REPO / "lsr" / "samples" / "cnndm_sample.jsonl"),
            "--output", str(out), "--dataset", "cnndm", "--engine", "vllm", "--device", "cpu",
            "--model", str(tiny_llama), "--max-model-len", "4096", "--kv-cache-gib", "0.5", "--limit", str(limit),
            "--structured-output", "--json-chars-per-token", "1", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "RAY_ADDRESS": ""}


def _ids(out: Path) -> list[str]:
    return pq.read_table(out, columns=["id"]).column("id").to_pylist()


def test_lsr_mine_on_a_cpu_vllm_replica_mines_and_parses_every_document(tiny_llama, tmp_path):
    out = tmp_path / "mined"
    done = subprocess.run(_command(tiny_llama, out, 16), cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "mined.report.json").read_text())
    assert report["outcome"] == "ok" and report["done"] == 16 and report["engine"] == "vllm"
    assert report["parse_rate"] == {"rationale": 1.0, "summaries": 1.0}
    assert "parsed 16/16 rationale and 16/16 summaries replies" in done.stderr + done.stdout
    rows = pq.read_table(out).to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(set(_ids(out)))
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 and r["aspects"] for r in rows)


def _engine_core(root: int) -> int | None:
    for pid in descendants(root):
        if "EngineCore" in command_line(pid):
            return pid
    return None


def test_a_killed_engine_core_is_rebuilt_and_every_document_is_still_written_once(tiny_llama, tmp_path):
    out = tmp_path / "mined"
    limit = 40
    process = subprocess.Popen(_command(tiny_llama, out, limit, "--rows-per-file", "4", "--max-num-seqs", "8"),
                               cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        killed = None
        deadline = time.monotonic() + 400
        while killed is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            written = len(list(out.glob("*.parquet"))) if out.exists() else 0
            core = _engine_core(process.pid)
            if core is not None and written >= 1:  # mid-run: some rows saved, most still to mine
                os.kill(core, signal.SIGKILL)
                killed = core
        assert killed is not None, "the engine core was never seen mid-run"
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output[-4000:]
    ids = _ids(out)
    assert len(ids) == len(set(ids)) == limit  # every id exactly once
    report = json.loads((tmp_path / "mined.report.json").read_text())
    assert report["outcome"] == "ok" and report["failed"] == 0
    # The calls in flight when the engine died were sent again, and the run says so.
    assert 0 < report["requests_resent"] <= 2 * 8 * 2  # at most both calls of two tasks of --max-num-seqs rows
    assert f"{report['requests_resent']} request(s) sent again" in output
    assert not Path(f"/proc/{killed}").exists()
