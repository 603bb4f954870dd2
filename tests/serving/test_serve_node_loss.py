"""Serving through the loss of a node: no failed request while a model replica lives.

``lsr serve`` (a subprocess, as a user runs it) serves the tiny checkpoint with two model replicas, one per
1-core worker raylet (cluster.yaml's ``cpu_worker`` type) of a loopback cluster whose head has no cores (so the
head holds only the controller, the proxy and the ingress); a few client threads post ``/summarize`` without
pause; the raylet of one replica is killed ungracefully, and a spare worker joins. Every answer must be a 200 (a
request lost with its replica is retried once on the other one), and the deployment must come back to two running
replicas. Then every worker goes: with no model replica anywhere, ``/summarize`` and ``/healthz`` answer 503 with
``Retry-After``. Nothing is timed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from lsr.serving.config import DEPLOYMENT_NAME
from tests.helpers.ports import free_port
from tests.helpers.processes import stop_group

pytestmark = pytest.mark.multinode

APP = "lsr"
CLIENTS = 4
DOCS = [
    "The council approved a new budget on Monday after a long debate about school funding and road repairs.",
    "Scientists found that the river's fish population doubled after the dam was removed three years ago.",
    "The team won the final in extra time, their first title in two decades, before a crowd of thousands.",
]
LSR = "import sys; from lsr.cli.main import main; sys.exit(main(sys.argv[1:]))"
#: A second driver that prints the application's replica states once a second, as one JSON line each: the test's
#: own process may already hold a local Ray (the session's), so it cannot connect to this cluster itself.
WATCH = r"""
import json, sys, time
import ray
from ray import serve
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
while True:
    try:
        app = serve.status().applications.get(sys.argv[2])
        row = {name: {getattr(k, "value", str(k)): n for k, n in d.replica_states.items()}
               for name, d in (app.deployments.items() if app else [])}
    except Exception as err:
        row = {"error": repr(err)}
    print(json.dumps({"t": time.time(), **row}), flush=True)
    time.sleep(1.0)
"""


class Watcher:
    """The replica states the WATCH driver printed, newest last."""

    def __init__(self, address: str, env: dict[str, str]):
        self.rows: list[dict] = []
        self.process = subprocess.Popen([sys.executable, "-c", WATCH, address, APP], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self.rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass

    def running(self, since: float = 0.0) -> list[int]:
        return [r.get(DEPLOYMENT_NAME, {}).get("RUNNING", 0) for r in self.rows if r["t"] >= since]

    def wait_for(self, predicate, timeout: float, since: float = 0.0) -> float | None:
        """The time of the first row at or after ``since`` whose running replicas satisfy ``predicate``."""
        end = time.time() + timeout
        while time.time() < end:
            for row in list(self.rows):
                if row["t"] >= since and predicate(row.get(DEPLOYMENT_NAME, {}).get("RUNNING", 0)):
                    return row["t"]
            time.sleep(0.5)
        return None

    def stop(self) -> None:
        stop_group(self.process, signal.SIGKILL)


def wait_ready(process: subprocess.Popen, log: Path, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if "ready at" in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(1)
    raise AssertionError(f"lsr serve did not become ready:\n{log.read_text(errors='replace')[-4000:]}")


def test_a_lost_replica_node_fails_no_request_replicas_come_back_none_left_is_503(
    loopback_cluster, checkpoint, tmp_path
):
    # cluster.yaml's CPU workers, one core each: one model replica fits on each. The GCS checks nodes every second
    # and gives up on one after 3 missed checks, so a lost node is seen in seconds (Ray's default is 30 s).
    cluster = loopback_cluster([("cpu_worker", 1), ("cpu_worker", 1)],
                               system_config={"health_check_period_ms": 1000, "health_check_failure_threshold": 3})
    first = cluster.worker_ids()[0]
    env = cluster.env()
    settings = tmp_path / "serve.yaml"
    settings.write_text(yaml.safe_dump({
        "generation": {"num_beams": 2, "min_new_tokens": 2, "max_new_tokens": 6},
        "source_max_tokens": 64,
        "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.02},
        "graceful_shutdown_timeout_s": 5.0,
        "graceful_shutdown_wait_loop_s": 0.5,
        "health_check_period_s": 2.0,
        "replica_wait_s": 5.0,
        "retry_after_s": 2,
    }))  # fmt: skip
    port = free_port()
    log = tmp_path / "serve.log"
    command = [sys.executable, "-c", LSR, "serve", "--model", checkpoint, "--config", str(settings),
               "--replicas", "2", "--num-cpus", "1", "--port", str(port), "--ray-address", cluster.address,
               "--proxy-location", "HeadOnly"]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    watcher = None
    stop = threading.Event()
    results: list[tuple[float, int, str]] = []

    def client(i: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                answer = requests.post(f"http://127.0.0.1:{port}/summarize", json={"text": DOCS[(i + n) % 3]},
                                       timeout=120)  # fmt: skip
                results.append((time.time(), answer.status_code, "" if answer.ok else answer.text[:300]))
            except requests.RequestException as err:
                results.append((time.time(), -1, repr(err)[:300]))

    clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    try:
        wait_ready(server, log, timeout=240)
        watcher = Watcher(cluster.address, env)
        assert watcher.wait_for(lambda n: n == 2, timeout=60) is not None, f"never two replicas: {watcher.rows[-3:]}"
        for thread in clients:
            thread.start()
        time.sleep(3)
        cluster.add_node("cpu_worker", 1)  # the spare that the lost replica is restarted on
        time.sleep(2)
        killed_at = time.time()
        cluster.kill_node(first)  # one core and no other replica fits there: it held one of the two
        lost = watcher.wait_for(lambda n: n < 2, timeout=90, since=killed_at)
        recovered = lost is not None and watcher.wait_for(lambda n: n == 2, timeout=150, since=lost) is not None
        time.sleep(3)  # a little load on the recovered deployment
        stop.set()
        for thread in clients:
            thread.join(timeout=150)
        # No model replica left anywhere (and no core to start one on): a 503 that says when to come back.
        gone_at = time.time()
        for node in cluster.worker_ids():
            cluster.kill_node(node)
        # a killed raylet's workers outlive it for a moment: ask once Serve has seen both replicas go
        none_left = watcher.wait_for(lambda n: n == 0, timeout=90, since=gone_at)
        unavailable = requests.post(f"http://127.0.0.1:{port}/summarize", json={"text": DOCS[0]}, timeout=120)
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=120)
    finally:
        stop.set()
        for thread in clients:
            if thread.is_alive():
                thread.join(timeout=150)
        if watcher is not None:
            watcher.stop()
        stop_group(server, signal.SIGTERM, wait=60)
    after = [r for r in results if r[0] >= killed_at]
    failed = [r for r in results if r[1] != 200]
    text = "".join(p.read_text(errors="replace") for p in (cluster.head_logs / "serve").glob("replica_*Ingress*.log"))
    print(f"{len(results)} requests, {len(after)} after the kill, {len(failed)} failed; "
          f"{text.count('retrying once')} retried, {text.count('answering 503')} answered 503; "
          f"replicas running since the kill: {watcher.running(killed_at)}")
    assert after, "no request was answered after the kill"
    assert not failed, f"{len(failed)} of {len(results)} requests failed: {failed[:5]}"
    assert lost is not None, f"the killed node's replica never left RUNNING: {watcher.rows[-5:]}"
    assert recovered, f"the deployment did not come back to two running replicas: {watcher.rows[-5:]}"
    assert none_left is not None, f"the replicas never left RUNNING: {watcher.rows[-5:]}"
    assert unavailable.status_code == 503 and unavailable.headers["retry-after"] == "2", unavailable.text
    assert "no model replica is available" in unavailable.json()["detail"]
    assert health.status_code == 503 and health.headers["retry-after"] == "2", health.text
