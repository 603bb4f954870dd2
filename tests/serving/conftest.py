"""Fixtures of the serving tests: the tiny served checkpoint, and a loopback Ray cluster of several raylets.

The cluster fixture is deliberately small (a head with no cores plus the workers a test adds) so that it can be
swapped for a shared loopback-cluster helper later; it never runs ``ray stop`` and puts back Ray's
current-cluster address file, which ``ray.cluster_utils.Cluster`` rewrites, when it ends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.cluster import ProcessGuard, ray_address_file

#: Ray refuses a multi-raylet cluster on one machine unless this is set, in every Ray process (and so in the
#: environment of the subprocesses a test starts).
CLUSTER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """A tiny MWF student saved as ``lsr train`` lays a run out: RUN/model plus RUN/train_report.json."""
    from lsr.model.loading import tiny_model

    run = tmp_path_factory.mktemp("runs") / "tiny-run"
    model, tokenizer = tiny_model({"mwf_views": ["ea", "as", "ter"], "mwf_gate_init": 0.3}, seed=2)
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    report = {"settings": {"dataset": "xsum", "objective": "mwf"}, "steps": 7, "metrics": {"loss": 1.5}}
    (run / "train_report.json").write_text(json.dumps(report))
    return str(run / "model")


class LoopbackCluster:
    """A Ray head with no cores on 127.0.0.1 (``address``), worker raylets added and killed by the test, and the
    environment a subprocess needs to join it (``env``: this tree first on PYTHONPATH, the cluster switch)."""

    def __init__(self, system_config: dict | None = None):
        from ray.cluster_utils import Cluster

        head = {"num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False}
        if system_config:
            head["_system_config"] = system_config
        self.guard = ProcessGuard()
        try:
            self.cluster = Cluster(initialize_head=True, head_node_args=head, shutdown_at_exit=False)
        finally:
            self.guard.restore()
        self.address = self.cluster.address
        self.workers: list = []
        self.started = [self.cluster.head_node]
        repo = str(Path(__file__).resolve().parents[2])
        path = [repo, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != repo]]
        self.env = {**os.environ, **CLUSTER_ENV, "PYTHONPATH": os.pathsep.join(path), "RAY_ADDRESS": self.address}

    def add_worker(self, num_cpus: float = 1, **resources: float):
        try:
            node = self.cluster.add_node(node_ip_address="127.0.0.1", num_cpus=num_cpus, resources=resources or None)
        finally:
            self.guard.restore()
        self.workers.append(node)
        self.started.append(node)
        return node

    def kill(self, node) -> None:
        """The node's raylet and its workers killed at once, as a lost machine (no graceful drain)."""
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)

    def shutdown(self) -> None:
        self.cluster.shutdown()  # removes this cluster's own nodes only (not `ray stop`)
        self.guard.forget(self.started)


@pytest.fixture()
def loopback_cluster(monkeypatch):
    """A :class:`LoopbackCluster` (head with no cores); its nodes go away and Ray's address file comes back."""
    for key, value in CLUSTER_ENV.items():
        monkeypatch.setenv(key, value)  # before the Cluster starts: its raylets inherit this environment
    address_file = ray_address_file()
    saved = address_file.read_bytes() if address_file.is_file() else None
    cluster = LoopbackCluster(system_config={"health_check_period_ms": 1000, "health_check_failure_threshold": 3})
    try:
        yield cluster
    finally:
        try:
            cluster.shutdown()
        finally:
            if saved is not None:  # the shutdown deleted it: put back the cluster that was current before
                address_file.parent.mkdir(parents=True, exist_ok=True)
                address_file.write_bytes(saved)
