"""The HTTP engine end to end through ray.data.llm against a loopback OpenAI-compatible server; kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from lsr.core.config import preset
from lsr.core.schema import RATIONALES
from lsr.mining.config import MineConfig
from lsr.mining.engines import HttpEngine
from lsr.mining.pipeline import run_mining
from tests.helpers.openai_stub_server import OpenAIStub, Plan, doc_key
from tests.helpers.paths import REPO

SECRET = "sk-test-DO-NOT-LEAK-7731"


def _all_text(*paths: Path) -> str:
    return "".join(p.read_bytes().decode("utf-8", "replace") for root in paths for p in root.rglob("*") if p.is_file())


def test_http_engine_end_to_end_keeps_every_row(ray_local, cnndm_path, tmp_path, monkeypatch, subset):
    rows = subset(cnndm_path, 12, tmp_path / "in.jsonl")
    keys = [doc_key(r["document"]) for r in rows]
    plan = Plan(
        refuse={keys[0]},
        garble_summaries={keys[1]},
        always_500={keys[2]},
        transient={keys[3]: [500, 429], keys[4]: [503]},
    )
    monkeypatch.setenv("LSR_TEST_KEY", SECRET)
    mining = preset("cnndm").mining
    out = tmp_path / "out"
    with OpenAIStub("cnndm", plan=plan, api_key=SECRET) as stub:
        engine = HttpEngine(
            url=stub.url,
            model="stub-70b",
            api_key_env="LSR_TEST_KEY",
            batch_size=4,
            max_retries=3,
            base_retry_wait_s=0.01,
        )
        report = run_mining(
            MineConfig(
                input=str(tmp_path / "in.jsonl"), output=str(out), dataset="cnndm", mining=mining, engine=engine,
                rows_per_file=4,
            )
        )
        requests = list(stub.requests)

    table = pq.read_table(out)
    assert table.schema.equals(RATIONALES)
    got = {r["id"]: r for r in table.to_pylist()}
    assert sorted(got) == sorted(r["id"] for r in rows) and table.num_rows == len(rows)
    by_key = {k: got[r["id"]] for k, r in zip(keys, rows, strict=False)}
    assert by_key[keys[0]]["error"].startswith("rationale_unparsable") and "sorry" in by_key[keys[0]]["raw_rationale"]
    assert by_key[keys[1]]["error"].startswith("summaries_unparsable") and by_key[keys[1]]["aspects"]
    assert by_key[keys[2]]["error"].startswith("rationale_request_failed") and "500" in by_key[keys[2]]["error"]
    for key in keys[3:]:  # the transient 500/429/503 were retried into good rows
        row = by_key[key]
        assert row["error"] is None, row["error"]
        assert row["aspects"] and len(row["aspects"]) == len(row["sentences"]) == len(row["triples"])
        assert row["triples"][0][0]["subject"] and row["total_summary"]
        assert row["prompt_tokens"] > len(row["document"].split()) and row["completion_tokens"] > 0
        assert row["engine"] == "http" and row["model"] == "stub-70b" and row["truncated"] is False
    # A failed call A means no call B; every retried request shows up once per attempt.
    assert [c for c, k, _ in requests if k == keys[2]] == ["rationale"] * 4
    assert [c for c, k, _ in requests if k == keys[0]] == ["rationale"]
    assert [s for c, k, s in requests if k == keys[3] and c == "rationale"] == [500, 429, 200]
    assert report.complete and report.failed_by_reason == {
        "rationale_unparsable": 1,
        "summaries_unparsable": 1,
        "rationale_request_failed": 1,
    }
    # Every request (retries included) was counted as it left, and every one of them is in a saved row: none lost.
    assert report.requests_sent_this_run == len(requests) == report.requests_sent
    assert report.requests_lost == 0 and report.rows_mined_again == 0
    assert SECRET not in _all_text(out) + (tmp_path / "out.report.json").read_text()


def test_long_documents_are_cut_to_the_context_and_flagged(ray_local, cnndm_path, tmp_path, subset):
    rows = subset(cnndm_path, 4, tmp_path / "in.jsonl")
    mining = preset("cnndm").mining
    with OpenAIStub("cnndm") as stub:
        engine = HttpEngine(
            url=stub.url, model="m", api_key_env="LSR_NO_SUCH_KEY", batch_size=4, max_model_len=3400
        )
        budget = engine.budget(mining)
        job = MineConfig(
            input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "out"), dataset="cnndm", mining=mining,
            engine=engine,
        )
        report = run_mining(job)
    table = pq.read_table(tmp_path / "out").to_pylist()
    long_ids = {
        r["id"] for r in rows if len(r["document"].split()) * 1.4 > budget.document_budget("cnndm", r["summary"])
    }
    assert long_ids and {r["id"] for r in table if r["truncated"]} == long_ids
    assert len(long_ids) < len(rows) and report.truncated == len(long_ids)
    assert all(r["error"] is None and r["prompt_tokens"] < 2 * 3400 for r in table)


def _mine_cli(input_path: Path, out: Path, url: str) -> subprocess.Popen:
    env = {**os.environ, "LSR_TEST_KEY": SECRET, "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "RAY_ADDRESS": ""}
    cmd = [
        sys.executable,
        "-m",
        "lsr.cli.main",
        "mine",
        "--input",
        str(input_path),
        "--output",
        str(out),
        "--dataset",
        "cnndm",
        "--engine",
        "http",
        "--url",
        url,
        "--model",
        "stub",
        "--api-key-env",
        "LSR_TEST_KEY",
        "--batch-size",
        "2",
        "--rows-per-file",
        "2",
        "--max-in-flight",
        "2",
        "--retry-wait",
        "0.01",
    ]
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


def test_killed_job_resumes_without_redoing_or_duplicating(cnndm_path, tmp_path, subset):
    rows = subset(cnndm_path, 16, tmp_path / "in.jsonl")
    out = tmp_path / "out"
    # 16 calls A and 8 calls B get answers, then the server holds every request: some documents finish.
    with OpenAIStub("cnndm", api_key=SECRET, stop_after=24) as stub:
        first = _mine_cli(tmp_path / "in.jsonl", out, stub.url)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (stub.answered >= 24 and list(out.glob("*.parquet"))):
            time.sleep(0.5)
        time.sleep(2)  # let writes of finished blocks land; the server holds every later request
        os.killpg(first.pid, signal.SIGKILL)
        first_log = first.communicate()[0].decode()
        assert stub.answered >= 24, first_log[-3000:]
    done_first = (
        set(pq.read_table(out, columns=["id"]).column("id").to_pylist()) if list(out.glob("*.parquet")) else set()
    )
    assert 0 < len(done_first) < len(rows), first_log[-3000:]

    with OpenAIStub("cnndm", api_key=SECRET) as stub:
        second = _mine_cli(tmp_path / "in.jsonl", out, stub.url)
        second_log = second.communicate(timeout=300)[0].decode()
        assert second.returncode == 0, second_log[-3000:]
        requested_again = {k for _, k, _ in stub.requests}

    ids = pq.read_table(out, columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == sorted(r["id"] for r in rows)  # each id exactly once
    finished_keys = {doc_key(r["document"]) for r in rows if r["id"] in done_first}
    assert not finished_keys & requested_again
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["complete"] and report["resumed_from_earlier_runs"] == len(done_first)
    assert "mined 16/16 documents (complete)" in second_log
    assert SECRET not in first_log + second_log + _all_text(out)
