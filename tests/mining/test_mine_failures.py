"""Failures against fault-injecting loopback servers: exit status, retry on resume, masked secrets, in-flight bound."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lsr.cli.main import main
from lsr.core.config import preset
from lsr.mining.config import MineConfig
from lsr.mining.engines import HttpEngine
from lsr.mining.failures import PERMANENT, TRANSIENT, UNPARSABLE, failure_kind, should_retry
from lsr.mining.http_session import ERROR_KEY, ResilientSession, masked_detail
from lsr.mining.pipeline import run_mining
from tests.helpers.openai_stub_server import OpenAIStub, Plan, doc_key

SECRET = "sk-live-0123456789abcdefSECRET"


def _mine(input_path: Path, out: Path, url: str, *extra: str) -> int:
    return main(
        ["mine", "--input", str(input_path), "--output", str(out), "--dataset", "cnndm", "--engine", "http",
         "--url", url, "--model", "stub", "--api-key-env", "LSR_TEST_KEY", "--batch-size", "4",
         "--max-retries", "1", "--retry-wait", "0.01", "--rows-per-file", "4", *extra]
    )


def _ids(out: Path) -> list[str]:
    return pq.read_table(out, columns=["id"]).column("id").to_pylist()


def test_failure_kinds():
    assert failure_kind("rationale_request_failed: http: gave up after 5 attempts; last: HTTP 503 x") == TRANSIENT
    assert failure_kind("summaries_request_failed: http: gave up; last: HTTP 429 Too Many") == TRANSIENT
    assert failure_kind("rationale_request_failed: http: gave up; last: ClientConnectorError: refused") == TRANSIENT
    assert failure_kind("rationale_request_failed: http: gave up; last: TimeoutError: ") == TRANSIENT
    assert failure_kind("rationale_request_failed: http: HTTP 401 Unauthorized: bad key") == TRANSIENT
    assert failure_kind("rationale_request_failed: http: HTTP 400 Bad Request: too long") == PERMANENT
    assert failure_kind("rationale_unparsable: no line had three fields") == UNPARSABLE
    assert failure_kind("document_too_long: no room") == PERMANENT
    assert not should_retry("rationale_unparsable: x", transient=True, unparsable=False)
    assert should_retry("rationale_unparsable: x", transient=False, unparsable=True)
    assert not should_retry(None, transient=True, unparsable=True)


def test_all_failed_is_a_clear_error_and_a_healthy_rerun_retries_every_row(
    ray_local, cnndm_path, tmp_path, monkeypatch, capsys, subset
):
    rows = subset(cnndm_path, 6, tmp_path / "in.jsonl")
    monkeypatch.setenv("LSR_TEST_KEY", SECRET)
    out = tmp_path / "out"
    with OpenAIStub("cnndm", plan=Plan(fail_status=500)) as stub:
        assert _mine(tmp_path / "in.jsonl", out, stub.url) == 4
    err = capsys.readouterr().err
    assert "every one of the 6 rows failed (6 rationale_request_failed)" in err
    assert sorted(_ids(out)) == sorted(r["id"] for r in rows)

    with OpenAIStub("cnndm") as stub:  # the server is back: every failed row is mined again, none doubled
        assert _mine(tmp_path / "in.jsonl", out, stub.url) == 0
        assert {k for c, k, _ in stub.requests if c == "rationale"} == {doc_key(r["document"]) for r in rows}
    table = pq.read_table(out).to_pylist()
    assert sorted(r["id"] for r in table) == sorted(r["id"] for r in rows) and all(r["error"] is None for r in table)
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["outcome"] == "ok" and report["retried_this_run"] == {"transient": 6}


def test_a_server_that_is_down_then_up(ray_local, cnndm_path, tmp_path, monkeypatch, capsys, subset):
    rows = subset(cnndm_path, 4, tmp_path / "in.jsonl")
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    out = tmp_path / "out"
    assert _mine(tmp_path / "in.jsonl", out, dead) == 4
    assert "every one of the 4 rows failed" in capsys.readouterr().err
    with OpenAIStub("cnndm") as stub:
        assert _mine(tmp_path / "in.jsonl", out, stub.url) == 0
    assert sorted(_ids(out)) == sorted(r["id"] for r in rows)


def test_some_failed_exits_3_and_unparsable_rows_are_retried_only_when_asked(
    ray_local, cnndm_path, tmp_path, monkeypatch, capsys, subset
):
    rows = subset(cnndm_path, 6, tmp_path / "in.jsonl")
    refused = doc_key(rows[0]["document"])
    out = tmp_path / "out"
    with OpenAIStub("cnndm", plan=Plan(refuse={refused})) as stub:
        assert _mine(tmp_path / "in.jsonl", out, stub.url) == 3
    assert "1 failed [1 rationale_unparsable]" in capsys.readouterr().out
    with OpenAIStub("cnndm") as stub:
        assert _mine(tmp_path / "in.jsonl", out, stub.url) == 3  # parse failures are kept by default
        assert stub.requests == []
        assert _mine(tmp_path / "in.jsonl", out, stub.url, "--retry-unparsable") == 0
        assert {k for _, k, _ in stub.requests} == {refused}
    assert sorted(_ids(out)) == sorted(r["id"] for r in rows)


def test_the_key_is_masked_before_the_error_text_is_cut():
    assert masked_detail("a" * 195 + SECRET, [SECRET]) == "a" * 195 + "***"
    assert SECRET[:5] not in masked_detail("a" * 195 + SECRET, [SECRET])

    async def post(url):
        async with ResilientSession(max_retries=0, redact_values=(SECRET,)) as session:
            reply, _ = await session.post_json(url, headers={"Authorization": f"Bearer {SECRET}"}, data=json.dumps(
                {"model": "m", "messages": [{"role": "user", "content": "Article:\nx\n\nReference summary:\ns"}]}
            ))
            return reply[ERROR_KEY]

    for at in (180, 190, 193, 200):  # the key straddles the 200-character cut
        with OpenAIStub("cnndm", plan=Plan(fail_status=500, echo_auth_at=at)) as stub:
            error = asyncio.run(post(stub.url + "/chat/completions"))
        assert "HTTP 500" in error and SECRET[:4] not in error.replace("Bearer", ""), error


def test_in_flight_requests_stay_within_the_documented_bound(ray_local, cnndm_path, tmp_path, subset):
    subset(cnndm_path, 16, tmp_path / "in.jsonl")
    mining = preset("cnndm").mining
    with OpenAIStub("cnndm", delay=0.3) as stub:
        engine = HttpEngine(url=stub.url, model="m", api_key_env="LSR_NO_SUCH_KEY", batch_size=8, max_in_flight=2,
                            concurrency=1)
        config = MineConfig(input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "out"), dataset="cnndm",
                            mining=mining, engine=engine, rows_per_file=4)
        report = run_mining(config)
    # Documented on HttpEngine: call A and call B each run `concurrency` actors of `max_in_flight` requests.
    assert report.outcome == "ok"
    assert 2 <= stub.max_in_flight_seen <= 2 * 1 * 2, stub.max_in_flight_seen


@pytest.mark.parametrize("status", [401])
def test_a_wrong_key_fails_every_row_and_is_retried_once_fixed(
    ray_local, cnndm_path, tmp_path, monkeypatch, status, subset
):
    rows = subset(cnndm_path, 3, tmp_path / "in.jsonl")
    out = tmp_path / "out"
    monkeypatch.setenv("LSR_TEST_KEY", "sk-wrong")
    with OpenAIStub("cnndm", api_key=SECRET) as stub:
        assert _mine(tmp_path / "in.jsonl", out, stub.url) == 4
        errors = pq.read_table(out, columns=["error"]).column("error").to_pylist()
        assert all(f"HTTP {status}" in e and "sk-wrong" not in e for e in errors)
        monkeypatch.setenv("LSR_TEST_KEY", SECRET)
        assert _mine(tmp_path / "in.jsonl", out, stub.url) == 0
    assert sorted(_ids(out)) == sorted(r["id"] for r in rows)
