"""Serving through a node loss, and replica autoscaling under a burst, on a loopback Ray cluster.

Two runs of ``lsr serve`` (a subprocess, as a user runs it) on a cluster of raylets on 127.0.0.1 whose head has
no cores (controller, HTTP proxy and the head-pinned ingress live there) and whose workers have one core each:

1. node loss: ``--replicas 2 --num-cpus 1`` on two workers, ``--clients`` closed-loop clients posting
   ``/summarize`` without pause, a spare worker joining, and the worker of one replica killed ungracefully
   ``--kill-at`` seconds in; the run lasts ``--duration`` seconds. Printed: requests, failed requests (any answer
   but 200), retries the ingress logged, seconds from the kill to two running replicas again, and p50/p99
   latency before the kill, during the recovery and after it.
2. autoscaling: ``--autoscale 1,2`` with a low target (``--target`` ongoing requests per replica) and short
   up/down delays (the YAML's autoscaling settings), one client for a while, a burst of ``--clients``, then one
   client again. Printed: the replica timeline (when the deployment went to 2 running replicas and back to 1).

Ray's node-failure detection is left at its defaults (the GCS's health checks), so the recovery time is what a
real cluster sees for a lost machine, plus the replica's start. The load generator runs on the same machine.

    python bench/bench_serve_node_loss.py                 # the tiny student, built here
    python bench/bench_serve_node_loss.py --output node_loss.json
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.helpers: the loopback cluster, the tiny student, free ports, the samples

from tests.helpers.cluster import LoopbackCluster  # noqa: E402
from tests.helpers.paths import sample_documents  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402
from tests.helpers.processes import stop_group  # noqa: E402
from tests.helpers.tiny_student import save_tiny_student  # noqa: E402

LSR = "import sys; from lsr.cli.main import main; sys.exit(main(sys.argv[1:]))"
APP, MODEL = "lsr", "Summarizer"
DOCS = sample_documents()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a checkpoint folder (default: a tiny MWF student built here)")
    p.add_argument("--dataset", default="xsum", choices=("cnndm", "xsum"))
    p.add_argument("--clients", type=int, default=8, help="closed-loop clients (the burst, in the autoscale run)")
    p.add_argument("--duration", type=float, default=65.0, help="seconds of load in the node-loss run")
    p.add_argument("--kill-at", type=float, default=15.0, help="seconds into the load the node is killed")
    p.add_argument("--target", type=float, default=2.0, help="autoscaling target ongoing requests per replica")
    p.add_argument("--quiet-s", type=float, default=15.0, help="one client before and after the burst, seconds")
    p.add_argument("--burst-s", type=float, default=40.0, help="the burst's length, seconds")
    p.add_argument("--downscale-delay-s", type=float, default=10.0)
    p.add_argument("--upscale-delay-s", type=float, default=2.0)
    p.add_argument("--skip", choices=("node-loss", "autoscale"), default=None, help="leave one run out")
    p.add_argument("--output", default=None, help="also write the figures as JSON here")
    return p.parse_args(argv)


class Load:
    """Closed-loop clients posting ``/summarize``; ``(start, end, status)`` per request."""

    def __init__(self, url: str):
        self.url, self.results, self._threads = url, [], []
        self._stops: list[threading.Event] = []

    def add(self, n: int) -> None:
        for _ in range(n):
            stop = threading.Event()
            thread = threading.Thread(target=self._client, args=(stop, len(self._threads)), daemon=True)
            self._stops.append(stop)
            self._threads.append(thread)
            thread.start()

    def remove(self, n: int) -> None:
        for _ in range(n):
            self._stops.pop().set()

    def stop(self) -> None:
        for stop in self._stops:
            stop.set()
        for thread in self._threads:
            thread.join(timeout=180)

    def _client(self, stop: threading.Event, i: int) -> None:
        import requests

        n = i
        with requests.Session() as session:
            while not stop.is_set():
                n += 1
                t0 = time.time()
                try:
                    status = session.post(self.url, json={"text": DOCS[n % len(DOCS)]}, timeout=180).status_code
                except requests.RequestException:
                    status = -1
                self.results.append((t0, time.time(), status))


class Replicas:
    """The model deployment's running replicas, polled from ``serve.status()`` twice a second: ``(time, n)``."""

    def __init__(self):
        self.rows: list[tuple[float, int]] = []
        self.errors: list[str] = []
        #: ``(time, replicas STARTING)``: when the controller decided to add one (before it runs).
        self.starting: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        from ray import serve

        while not self._stop.is_set():
            try:
                app = serve.status().applications.get(APP)
                states = app.deployments[MODEL].replica_states if app and MODEL in app.deployments else {}
                self.rows.append((time.time(), int(states.get("RUNNING", 0))))
                self.starting.append((time.time(), int(states.get("STARTING", 0))))
            except Exception as err:  # noqa: BLE001 - a status call during a node loss may fail: the next is tried
                self.errors.append(repr(err)[:200])
            time.sleep(0.5)

    def first(self, predicate, since: float, timeout: float) -> float | None:
        end = time.time() + timeout
        while time.time() < end:
            for t, n in list(self.rows):
                if t >= since and predicate(n):
                    return t
            time.sleep(0.25)
        return None

    def changes(self, since: float) -> list[tuple[float, int]]:
        out: list[tuple[float, int]] = []
        for t, n in self.rows:
            if t >= since and (not out or out[-1][1] != n):
                out.append((t - since, n))
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def latency(results: list[tuple[float, float, int]], lo: float, hi: float) -> dict[str, Any]:
    """Requests that started in ``[lo, hi)``: how many, failed, p50/p99 of the answered ones, in seconds."""
    window = [r for r in results if lo <= r[0] < hi]
    ok = np.array([end - start for start, end, status in window if status == 200])
    return {
        "requests": len(window),
        "failed": sum(1 for r in window if r[2] != 200),
        "p50_s": float(np.percentile(ok, 50)) if ok.size else None,
        "p99_s": float(np.percentile(ok, 99)) if ok.size else None,
    }


def start_serve(args: list[str], address: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [sys.executable, "-c", LSR, "serve", *args, "--port", str(port), "--ray-address", address,
               "--proxy-location", "HeadOnly"]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    end = time.time() + 300
    while time.time() < end:
        if "ready at" in log.read_text(errors="replace"):
            return process, port
        if process.poll() is not None:
            break
        time.sleep(1)
    stop_group(process, signal.SIGTERM, wait=90)
    raise SystemExit(f"lsr serve did not start:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def served(args: list[str], cluster: LoopbackCluster, env: dict[str, str], log: Path
           ) -> Iterator[tuple[Replicas, Load]]:
    """``lsr serve ARGS`` on the cluster, its replica poller and a load with no client yet; all stopped at the end."""
    server, port = start_serve(args, cluster.address, env, log)
    replicas = Replicas()
    load = Load(f"http://127.0.0.1:{port}/summarize")
    try:
        yield replicas, load
    finally:
        load.stop()
        replicas.stop()
        stop_group(server, signal.SIGTERM, wait=90)  # lsr serve drains


def ingress_log_count(cluster: LoopbackCluster, text: str) -> int:
    logs = cluster.head_logs / "serve"
    return sum(p.read_text(errors="replace").count(text) for p in logs.glob("replica_*Ingress*.log"))


def node_loss_run(ns: argparse.Namespace, cluster: LoopbackCluster, env: dict, model: str, tmp: Path
                  ) -> dict[str, Any]:
    first = cluster.worker_ids()[0]  # the cluster starts with two one-core workers: a replica on each
    settings = tmp / "node_loss.yaml"
    settings.write_text(json.dumps({"dataset": ns.dataset, "graceful_shutdown_timeout_s": 5.0}))
    args = ["--model", model, "--config", str(settings), "--replicas", "2", "--num-cpus", "1"]
    with served(args, cluster, env, tmp / "node_loss.log") as (replicas, load):
        retried_before = ingress_log_count(cluster, "retrying once")
        started = time.time()
        load.add(ns.clients)
        time.sleep(max(ns.kill_at - 3, 0))
        cluster.add_node("cpu_worker", 1)  # the spare the lost replica restarts on
        time.sleep(max(started + ns.kill_at - time.time(), 0))
        killed = time.time()
        cluster.kill_node(first)
        print(f"  killed the node of one replica {killed - started:.1f} s in", flush=True)
        lost = replicas.first(lambda n: n < 2, killed, timeout=120)
        back = replicas.first(lambda n: n == 2, lost, timeout=240) if lost else None
        time.sleep(max(started + ns.duration - time.time(), 0))
        load.stop()
        ended = time.time()
    recovered = back if back is not None else ended
    phases = {
        "before": latency(load.results, started, killed),
        "during": latency(load.results, killed, recovered),
        "after": latency(load.results, recovered, ended),
    }
    total = latency(load.results, started, ended)
    return {
        "seconds": ended - started,
        "requests": total["requests"],
        "failed": total["failed"],
        "statuses": sorted({r[2] for r in load.results}),
        "retried": ingress_log_count(cluster, "retrying once") - retried_before,
        "replica_seen_lost_s": None if lost is None else lost - killed,
        "recovery_s": None if back is None else back - killed,
        "phases": phases,
        "replica_timeline": replicas.changes(started),
        "status_errors": replicas.errors[:3],
    }


def autoscale_run(ns: argparse.Namespace, cluster: LoopbackCluster, env: dict, model: str, tmp: Path
                  ) -> dict[str, Any]:
    settings = tmp / "autoscale.yaml"
    settings.write_text(json.dumps({
        "dataset": ns.dataset,
        "graceful_shutdown_timeout_s": 5.0,
        "autoscaling": {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": ns.target,
                        "upscale_delay_s": ns.upscale_delay_s, "downscale_delay_s": ns.downscale_delay_s,
                        "look_back_period_s": 11.0},  # Serve wants it above its 10 s metrics interval
    }))  # fmt: skip
    marks: dict[str, float] = {}
    with served(["--model", model, "--config", str(settings), "--num-cpus", "1"], cluster, env,
                tmp / "autoscale.log") as (replicas, load):
        started = time.time()
        load.add(1)
        time.sleep(ns.quiet_s)
        marks["burst"] = time.time() - started
        load.add(ns.clients - 1)
        time.sleep(ns.burst_s)
        marks["burst_end"] = time.time() - started
        load.remove(ns.clients - 1)
        down = replicas.first(lambda n: n == 1, started + marks["burst_end"], timeout=ns.downscale_delay_s + 120)
        time.sleep(ns.quiet_s)
        load.stop()
        ended = time.time()
    timeline = replicas.changes(started)
    up = next((t for t, n in timeline if n == 2), None)
    decided = next((t - started for t, n in replicas.starting if n > 0 and t - started > marks["burst"]), None)
    return {
        "marks_s": marks,
        "replica_timeline": timeline,
        "status_errors": replicas.errors[:3],
        "up_after_burst_s": None if up is None else up - marks["burst"],
        "starting_after_burst_s": None if decided is None else decided - marks["burst"],
        "down_after_burst_s": None if down is None else down - started - marks["burst_end"],
        "requests": len(load.results),
        "failed": sum(1 for r in load.results if r[2] != 200),
        "seconds": ended - started,
    }


def report(loss: dict[str, Any] | None, scale: dict[str, Any] | None) -> None:
    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    if loss:
        print(f"\nnode loss: {loss['requests']} requests in {loss['seconds']:.0f} s, {loss['failed']} failed "
              f"(statuses {loss['statuses']}), {loss['retried']} retried by the ingress; replica seen lost "
              f"{s(loss['replica_seen_lost_s'])} s after the kill, 2 running again {s(loss['recovery_s'])} s "
              "after it")  # fmt: skip
        print("\n| phase | requests | failed | p50 s | p99 s |\n|---|---:|---:|---:|---:|")
        for name, p in loss["phases"].items():
            print(f"| {name} | {p['requests']} | {p['failed']} | {s(p['p50_s'])} | {s(p['p99_s'])} |")
        print("replicas (s since load start, running):", [(round(t, 1), n) for t, n in loss["replica_timeline"]])
    if scale:
        print(f"\nautoscale 1,2: {scale['requests']} requests, {scale['failed']} failed; burst at "
              f"{scale['marks_s']['burst']:.0f} s, ended at {scale['marks_s']['burst_end']:.0f} s; a second replica "
              f"starting "
              f"{s(scale['starting_after_burst_s'])} s into the burst and running {s(scale['up_after_burst_s'])} s "
              f"into it, back to 1 {s(scale['down_after_burst_s'])} s after it")  # fmt: skip
        print("replicas (s since load start, running):", [(round(t, 1), n) for t, n in scale["replica_timeline"]])


def main(argv: list[str] | None = None) -> None:
    ns = parse_args(argv)
    from lsr.core import console

    console.quiet_libraries()  # before Ray is imported: its node-death notices stay in its logs, as in lsr's commands
    import ray

    loss = scale = None
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        model = ns.model or save_tiny_student(tmp / "tiny")
        for run in ("node-loss", "autoscale"):
            if ns.skip == run:
                continue
            # A fresh cluster per run: a head with no cores, two of cluster.yaml's CPU workers of one core each.
            with LoopbackCluster([("cpu_worker", 1), ("cpu_worker", 1)]) as cluster:
                try:
                    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
                    env = cluster.env()
                    print(f"{run}: a loopback cluster at {cluster.address}", flush=True)
                    if run == "node-loss":
                        loss = node_loss_run(ns, cluster, env, model, tmp)
                    else:
                        scale = autoscale_run(ns, cluster, env, model, tmp)
                finally:
                    from ray.serve.context import _set_global_client

                    _set_global_client(None)  # the next run's cluster has a controller of its own (same job id)
                    ray.shutdown()
    report(loss, scale)
    if ns.output:
        Path(ns.output).write_text(json.dumps({"args": vars(ns), "node_loss": loss, "autoscale": scale}, indent=2))


if __name__ == "__main__":
    main()
