"""A worker node dies under ``lsr mine``: the run still ends with every id exactly once and no failed row, and the
report counts the rework (requests sent for rows lost with the node, and those rows, mined again).

On a three-node loopback cluster (tests/helpers/cluster.py: a head with no CPUs, two mining nodes), ``lsr mine
--engine http`` runs as a subprocess against the loopback OpenAI-compatible stub; once rows reach storage, the node
holding a mining actor, and blocks in its object store, is killed ungracefully (every process of its raylet SIGKILLed
at once). Ray restarts the actor on the other node and sends its tasks again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import pyarrow.parquet as pq
import pytest

from lsr.mining.actor_pool import TASKS_PER_ACTOR
from tests.helpers.mined import listed_ids
from tests.helpers.openai_stub_server import OpenAIStub, tiny_documents
from tests.helpers.paths import REPO

DOCUMENTS = 320
MAX_IN_FLIGHT = 8
CONCURRENCY = 2  # one mining actor per worker node, when Ray spreads them
ROWS_PER_FILE = 16
#: Task results over this many bytes go to the object store of the node that made them instead of travelling inline
#: to their owner (Ray's default: 100 KiB). A real run's blocks are megabytes, so a lost node takes stored blocks
#: with it; at this size the test's small blocks do too.
INLINE_LIMIT_BYTES = 1024

pytestmark = pytest.mark.multinode


def _wait_for_stored_objects(cluster, node_id: str, timeout: float = 30.0) -> tuple[int, int]:
    """The node's object store as soon as it holds an object (blocks come and go as the driver takes them)."""
    deadline = time.monotonic() + timeout
    held = cluster.object_store(node_id)
    while held[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
        held = cluster.object_store(node_id)
    return held


def test_a_worker_node_killed_mid_run_loses_no_row_and_the_report_counts_the_rework(loopback_cluster, tmp_path):
    rows = tiny_documents(DOCUMENTS)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    cluster = loopback_cluster([("mining_gpu", 2), ("mining_gpu", 2)],
                               system_config={"max_direct_call_object_size": INLINE_LIMIT_BYTES})
    started = time.monotonic()
    with OpenAIStub("cnndm", delay=0.5) as stub:
        cmd = [sys.executable, "-m", "lsr.cli", "mine", "--input", str(tmp_path / "in.jsonl"), "--output", str(out),
               "--dataset", "cnndm", "--engine", "http", "--url", stub.url, "--model", "stub",
               "--api-key-env", "LSR_NONE", "--concurrency", str(CONCURRENCY), "--max-in-flight", str(MAX_IN_FLIGHT),
               "--batch-size", "4", "--rows-per-file", str(ROWS_PER_FILE), "--retry-wait", "0.01"]
        job = subprocess.Popen(cmd, cwd=REPO, env=cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
        try:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and len(listed_ids(out)) < ROWS_PER_FILE and job.poll() is None:
                time.sleep(0.2)
            miners = cluster.actors("DocumentMiner")
            victim = cluster.node_of_actor("DocumentMiner")
            assert victim is not None, [(a.class_name, a.node_id) for a in cluster.actors()]
            on_victim = sum(a.node_id == victim for a in miners)
            held = _wait_for_stored_objects(cluster, victim)
            saved_before = len(listed_ids(out))
            requests_before = len(stub.requests)
            cluster.kill_node(victim)
            killed_at = time.monotonic() - started
            log = job.communicate(timeout=240)[0].decode()
        finally:
            if job.poll() is None:
                job.kill()
        received, arrivals = stub.received, list(stub.arrivals)
    seconds = time.monotonic() - started

    assert job.returncode == 0, log[-4000:]
    assert saved_before < DOCUMENTS, "the run ended before the node was killed"
    assert held[0] > 0, "the killed node held no block in its object store"
    table = pq.read_table(out, columns=["id", "error", "requests"])
    ids = table.column("id").to_pylist()
    assert Counter(ids) == Counter(r["id"] for r in rows)  # every id exactly once
    assert table.column("error").null_count == table.num_rows  # no failed row
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["outcome"] == "ok" and report["failed"] == 0 and report["output_rows"] == DOCUMENTS

    # The tally counted what the server received (but for a request whose sender died between counting it and
    # sending it, or one sent just before its count left the dying process); what no saved row accounts for is the
    # rework.
    row_requests = sum(table.column("requests").to_pylist())
    assert report["requests_sent"] == row_requests == 2 * DOCUMENTS
    lost, again = report["requests_lost"], report["rows_mined_again"]
    assert lost == report["requests_sent_this_run"] - row_requests
    assert abs(report["requests_sent_this_run"] - received) <= 2, (report["requests_sent_this_run"], received)
    # Documents whose call A reached the server twice (answered or cut by the kill): mined again, as the tally says.
    twice = sum(n > 1 for n in Counter(k for call, k in arrivals if call == "rationale").values())
    assert 0 < twice <= again, (twice, again)
    # The rework stays within what the dead node had in flight: its actors' blocks (TASKS_PER_ACTOR blocks of
    # MAX_IN_FLIGHT documents each), two requests each.
    in_flight = on_victim * TASKS_PER_ACTOR * MAX_IN_FLIGHT
    assert 0 < again <= in_flight, (again, on_victim, in_flight)
    assert 0 < lost <= 2 * again
    assert f"{lost} request(s) lost with failed actors/nodes (rows mined again: {again})" in log, log[-3000:]
    table_row = f"| {report['requests_sent_this_run']} / {lost} ({again}) |"
    assert table_row in (tmp_path / "out.report.md").read_text()
    print(f"node loss: {DOCUMENTS} documents, killed at {killed_at:.1f} s after {saved_before} rows saved and "
          f"{requests_before} requests answered, {on_victim} of {len(miners)} miners and {held[0]} objects "
          f"({held[1]} bytes) on the node; "
          f"{report['requests_sent_this_run']} requests counted ({received} received) for {row_requests} the rows "
          f"record: {lost} lost, {again} rows mined again ({twice} seen twice by the server); {seconds:.1f} s")
