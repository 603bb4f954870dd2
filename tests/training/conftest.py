"""Fixtures of the training tests only: a Ray cluster of several nodes on 127.0.0.1 (``ray.cluster_utils.Cluster``).

Kept simple on purpose, so it can give way to a shared cluster helper later: a head without CPUs (the driver and Ray
Train's controller live there) and worker nodes of a given size, each a raylet of its own that a test may kill.
Every process is ended by the cluster's own handles (never ``ray stop``, which would stop every Ray on the machine).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers.cluster import ProcessGuard, ray_address_file

#: Without it, Ray refuses a driver of another process on a cluster of several raylets on one machine.
CLUSTER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


class LoopbackCluster:
    """A ``ray.cluster_utils.Cluster`` on 127.0.0.1 and what a test needs of it: its address, an environment for
    the processes a test starts (``lsr train`` as a subprocess), its worker nodes and the pids of their workers."""

    def __init__(self, cluster, guard):
        self.cluster = cluster
        self.guard = guard
        self.started = [cluster.head_node]

    @property
    def address(self) -> str:
        return self.cluster.address

    def env(self) -> dict[str, str]:
        """The environment of a driver subprocess: this one's, the cluster switch, and no other RAY_ADDRESS."""
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        return {**env, **CLUSTER_ENV}

    def add_node(self, num_cpus: int = 1, **resources: float):
        try:
            node = self.cluster.add_node(node_ip_address="127.0.0.1", num_cpus=num_cpus, resources=dict(resources))
        finally:
            self.guard.restore()
        self.started.append(node)
        return node

    @property
    def worker_nodes(self) -> list:
        return list(self.cluster.worker_nodes)

    @staticmethod
    def processes_titled(node, title: str) -> list[int]:
        """The pids of the node's worker processes whose title (Ray names them after their actor) holds ``title``."""
        import psutil

        raylet = node.all_processes["raylet"][0].process.pid
        found = []
        for child in psutil.Process(raylet).children(recursive=True):
            try:
                if title in " ".join(child.cmdline()):
                    found.append(child.pid)
            except psutil.Error:
                continue
        return found

    def kill_node(self, node) -> None:
        """End every process of the node at once (SIGKILL, no graceful shutdown): the node is lost."""
        self.cluster.remove_node(node, allow_graceful=False)


@pytest.fixture()
def loopback_cluster() -> Iterator[LoopbackCluster]:
    """A head of 0 CPUs on 127.0.0.1; the test adds its worker nodes. Ray's current-cluster file (which ``Cluster``
    rewrites, and deletes at shutdown) is put back as it was, so other Rays on the machine are not confused."""
    from ray.cluster_utils import Cluster

    address_file = ray_address_file()
    saved = address_file.read_bytes() if address_file.exists() else None
    previous = {k: os.environ.get(k) for k in CLUSTER_ENV}
    os.environ.update(CLUSTER_ENV)  # the raylets inherit this process's environment
    cluster = None
    guard = ProcessGuard()
    wrapped = None
    try:
        try:
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1"})
        finally:
            guard.restore()
        wrapped = LoopbackCluster(cluster, guard)
        yield wrapped
    finally:
        if cluster is not None:
            cluster.shutdown()
            guard.forget(wrapped.started if wrapped else [cluster.head_node])
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if saved is not None:
            address_file.parent.mkdir(parents=True, exist_ok=True)
            address_file.write_bytes(saved)
        elif address_file.exists():
            address_file.unlink()
