"""Autoscaling mining for real: Ray's autoscaler adds mining nodes when ``lsr mine --replicas 1,3`` asks for more
replicas, mining finishes, and the idle nodes are removed after the idle timeout.

The cluster is a head started with the fake multi-node provider (:mod:`tests.helpers.autoscaler`): real raylets on
127.0.0.1 that the autoscaler starts and stops. The replicas are real vLLM engines on the CPU serving the tiny
random Llama; the documents are the CNN/DM sample four times over (fresh ids), enough for a queue to build up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers.autoscaler import fake_cluster
from tests.helpers.paths import REPO
from tests.helpers.ray_head import start_head

pytestmark = [pytest.mark.multinode, pytest.mark.vllm]


def _documents(path: Path, copies: int) -> list[str]:
    rows = [json.loads(line) for line in (REPO / "lsr" / "samples" / "cnndm_sample.jsonl").read_text().splitlines()]
    ids = []
    with path.open("w", encoding="utf-8") as out:
        for copy in range(copies):
            for row in rows:
                ids.append(f"{row['id']}-{copy}")
                out.write(json.dumps({**row, "id": ids[-1]}) + "\n")
    return ids


def _mining_nodes(head) -> int:
    """Alive mining nodes, as ``ray status`` (the autoscaler's own account) lists them."""
    done = subprocess.run([str(Path(sys.executable).with_name("ray")), "status", "--address", head.address],
                          env=head.env, capture_output=True, text=True, timeout=120)  # fmt: skip
    active = done.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
    return sum(int(line.split()[0]) for line in active.splitlines() if line.strip().endswith("mining_gpu"))


@pytest.fixture
def autoscaling_head():
    head = start_head(0, autoscaling=lambda port: fake_cluster(port, max_mining_nodes=3, idle_timeout_minutes=0.2))
    try:
        yield head
    finally:
        head.stop()


def test_mining_nodes_are_added_for_replicas_and_removed_when_idle(autoscaling_head, tiny_llama, tmp_path):
    head = autoscaling_head
    ids = _documents(tmp_path / "docs.jsonl", copies=4)
    out = tmp_path / "mined"
    command = [sys.executable, "-m", "lsr.cli", "mine", "--input", str(tmp_path / "docs.jsonl"), "--output", str(out),
               "--dataset", "cnndm", "--engine", "vllm", "--device", "cpu", "--model", str(tiny_llama),
               "--max-model-len", "4096", "--kv-cache-gib", "0.25", "--structured-output", "--json-chars-per-token",
               "1", "--replicas", "1,3", "--rows-per-file", "8", "--max-num-seqs", "8", "--ray-address", head.address]
    env = {**head.env, "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "will not allow it to scale up" not in done.stdout + done.stderr  # Ray Data's pool can grow

    written = pq.read_table(out, columns=["id", "error"])
    assert sorted(written.column("id").to_pylist()) == sorted(ids)  # every id once
    report = json.loads(Path(f"{out}.report.json").read_text())
    cluster = report["cluster"]
    nodes = [s["nodes"] for s in cluster]
    replicas = [s["replicas"] for s in cluster if s["replicas"] is not None]
    assert max(nodes) > nodes[0], cluster  # the autoscaler added nodes for the replicas
    assert max(replicas) >= 2, cluster  # and the pool used them

    deadline = time.monotonic() + 300  # idle timeout 12 s, plus the autoscaler's and the nodes' own pace
    while _mining_nodes(head) and time.monotonic() < deadline:
        time.sleep(5)
    assert _mining_nodes(head) == 0  # idle mining nodes removed (min_workers 0)
