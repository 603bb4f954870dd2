"""A Ray cluster of several raylets on 127.0.0.1 whose node types mirror ``cluster.yaml``, for multi-node tests.

``cluster.yaml`` declares a head with no CPUs for stage work, CPU workers, mining GPU nodes and training GPU nodes,
each GPU type with its ``accelerator_type:<GPU>`` resource (which ``lsr mine --accelerator-type`` and
``lsr train --accelerator-type`` ask for). :func:`node_types` reads those types from the file itself and shrinks
them to this machine: every CPU count becomes the test's own (small) figure, a GPU node keeps its accelerator
resource and gets fake GPUs (``num_gpus``: Ray only counts them; nothing here uses CUDA), and every node carries a
label ``lsr-node-type`` and a resource ``lsr_node_type:<name>`` so a test can pin work to a type or check where it
ran.

Use::

    with LoopbackCluster(workers=[("mining_gpu", 2), ("mining_gpu", 2)]) as cluster:
        env = cluster.env()                      # for an ``lsr`` subprocess: RAY_ADDRESS, PYTHONPATH, ...
        node = cluster.node_of_actor("DocumentMiner")
        cluster.kill_node(node)                  # every process of that raylet SIGKILLed at once

or the ``loopback_cluster`` fixture of ``tests/conftest.py`` (a factory: ``loopback_cluster(workers=...)``). The
mining, training, serving and select/evaluate multi-node tests all run on it.

How it is started and stopped, and why:

- ``ray.cluster_utils.Cluster`` starts the head (``num_cpus=0``, as in cluster.yaml) and one raylet per worker, all
  on 127.0.0.1, in a temp folder of their own (short: Ray's socket paths live under it) and on free ports for the
  dashboard and its agent (a Ray already running on the machine holds the defaults). The dashboard is on, because
  ``ray.util.state`` (which node holds an actor, where a task ran) asks it.
- ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set in this process before Ray starts and in :meth:`env`: with it every
  Ray process, and a driver in another process, takes 127.0.0.1 as its own address, so an ``lsr`` subprocess
  joins the cluster (``--ray-address`` or ``RAY_ADDRESS``) and finds its node.
- ``PYTHONPATH`` starts with this checkout in the raylets' environment (their workers inherit it) and in
  :meth:`env`, so every worker imports this tree's ``lsr``.
- ``Cluster`` writes Ray's current-cluster file (``/tmp/ray/ray_current_cluster``, what ``ray.init()`` without an
  address joins): its content before the start is put back on exit (the file removed if there was none), unless
  the file no longer names this cluster (another test's cluster, started since, keeps its address there).
- Everything is stopped by pid: each node's process tree is read from /proc (the raylet, its agents, its workers;
  the head's GCS and dashboard too) and SIGKILLed, never ``ray stop``, which would stop every Ray on the machine.
  :meth:`kill_node` does the same to one node mid-run: an ungraceful death (no drain, no goodbye to the GCS),
  after which ``Cluster.remove_node(allow_graceful=False)`` only forgets it.

The test process never joins the cluster as a driver, so the session's local Ray (``ray_local``) stays usable
beside it: the cluster's state is read through ``ray.util.state`` from its dashboard URL (:attr:`dashboard_url`;
a GCS address would be looked up in the Ray this process drives), this process's internal KV, which every new
``Node`` points at the cluster's GCS, is given back after each node, and the cluster's GCS clients are dropped
when it stops (Ray ends a process whose GCS client has not reached its GCS for 60 s). A start that fails (on a
busy machine Ray's 30 s for a raylet to register can run out) is swept by pid and tried once more.

Not mirrored: cluster.yaml's CPU counts (192, 48, 32), its instance types and autoscaling (a test adds and kills
nodes itself), real GPUs, token authentication.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.paths import REPO
from tests.helpers.ports import free_ports

#: The label (and the ``lsr_node_type:<name>`` resource) every node of a loopback cluster carries.
NODE_TYPE_LABEL = "lsr-node-type"
#: Fake GPUs a GPU node type gets (Ray counts them; nothing uses CUDA).
FAKE_GPUS = 1
#: Object store per node: Ray's test default (150 MiB) is small for a few hundred documents in flight.
OBJECT_STORE_BYTES = 200 * 1024 * 1024

#: ``ray._private.ray_constants`` values set in this process while a cluster runs (put back after): the first is
#: what ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` means, the second gives a dashboard on a busy machine 3 minutes.
PATCHED_CONSTANTS = {"ENABLE_RAY_CLUSTER": False, "RAY_DASHBOARD_STARTUP_TIMEOUT_S": 180}

_UNSAVED = object()

#: The environment every Ray process of the cluster and every driver joining it needs.
CLUSTER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass(frozen=True)
class NodeType:
    """A node type of cluster.yaml, shrunk to this machine."""

    name: str
    num_gpus: int
    resources: dict[str, float] = field(default_factory=dict)

    def node_args(self, num_cpus: int) -> dict[str, Any]:
        """``Cluster.add_node`` arguments for a node of this type with ``num_cpus`` CPUs."""
        return {
            "node_ip_address": "127.0.0.1",
            "num_cpus": num_cpus,
            "num_gpus": self.num_gpus,
            "resources": {**self.resources, f"lsr_node_type:{self.name}": 1},
            "labels": {NODE_TYPE_LABEL: self.name},
            "object_store_memory": OBJECT_STORE_BYTES,
        }


def ray_address_file() -> Path:
    """Ray's current-cluster file, which ``ray.cluster_utils.Cluster`` rewrites (and deletes at shutdown), with its
    folder made: ``Cluster`` cannot write it on a machine where Ray never ran (no ``/tmp/ray`` yet)."""
    from ray._common.utils import get_ray_address_file

    path = Path(get_ray_address_file(None))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def node_types(path: Path = REPO / "cluster.yaml") -> dict[str, NodeType]:
    """cluster.yaml's ``available_node_types``: each with its accelerator resources, and fake GPUs if it has GPUs."""
    config = yaml.safe_load(path.read_text())
    types = {}
    for name, spec in config["available_node_types"].items():
        resources = spec.get("resources") or {}
        accelerators = {k: float(v) for k, v in resources.items() if k.startswith("accelerator_type:")}
        types[name] = NodeType(name, FAKE_GPUS if resources.get("GPU") else 0, accelerators)
    return types


def head_type(path: Path = REPO / "cluster.yaml") -> str:
    return yaml.safe_load(path.read_text())["head_node_type"]


# ---------------------------------------------------------------------------------------------- processes


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every live process (zombies left out), read from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] in "ZX":  # dead, waiting for its parent (this process, for a raylet) to reap it
            continue
        table[int(entry.name)] = (int(fields[1]), fields[19])  # ppid, starttime (pid reuse guard)
    return table


def process_tree(roots: list[int]) -> dict[int, str]:
    """``roots`` and every live process below them: pid -> start time."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found: dict[int, str] = {}
    todo = [pid for pid in roots if pid in table]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found[pid] = table[pid][1]
        todo.extend(children.get(pid, []))
    return found


def kill_processes(processes: dict[int, str], timeout_s: float = 15.0) -> None:
    """SIGKILL every process of ``processes`` still alive with the same start time; wait until they are gone."""
    for pid, started in processes.items():
        if _process_table().get(pid, (None, None))[1] != started:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        table = _process_table()
        if not any(table.get(pid, (None, None))[1] == s for pid, s in processes.items()):
            return
        time.sleep(0.1)


def processes_naming(marker: str) -> list[int]:
    """The live processes whose command line contains ``marker`` (a cluster's temp folder), this one left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def node_roots(node) -> list[int]:
    """The pids a ``ray._private.node.Node`` started itself (raylet, GCS, dashboard, agents, ...)."""
    return [info.process.pid for infos in node.all_processes.values() for info in infos if info.process is not None]


def _point_internal_kv(client: Any) -> None:
    """This process's internal KV through ``client`` (a GCS client), or reset when ``client`` is None."""
    import ray.experimental.internal_kv as internal_kv

    if client is not None:
        internal_kv._initialize_internal_kv(client)
    else:
        internal_kv._internal_kv_reset()


# ---------------------------------------------------------------------------------------------- the cluster


class LoopbackCluster:
    """A head (cluster.yaml's head type, 0 CPUs) and the given workers: ``workers=[(type name, CPUs), ...]``."""

    def __init__(self, workers: list[tuple[str, int]], *, head_cpus: int = 0,
                 system_config: dict[str, Any] | None = None):
        self.types = node_types()
        for name, _ in workers:
            if name not in self.types:
                raise KeyError(f"{name!r} is not a node type of cluster.yaml ({', '.join(self.types)})")
        self.workers_spec = workers
        self.head_cpus = head_cpus
        self.system_config = dict(system_config or {})
        self.cluster = None
        self.temp_dir: Path | None = None
        self.nodes: dict[str, Any] = {}  # node id (hex) -> ray._private.node.Node
        self.node_type_of: dict[str, str] = {}  # node id -> type name
        self.killed: list[str] = []
        self._saved_env: dict[str, str | None] = {}
        self._address_file: Path | None = None
        self._address_before: str | None = None
        self._saved_constants: dict[str, Any] = {}
        self._saved_kv: Any = _UNSAVED
        self._address: str | None = None

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> LoopbackCluster:
        for attempt in (1, 2):
            try:
                self.start()
                return self
            except Exception:
                self.stop()
                # Ray gives a raylet 30 s to register with the GCS (and the dashboard a fixed time to come up); a
                # machine busy with other work can miss that: one more try.
                if attempt == 2:
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.nodes, self.node_type_of, self.killed = {}, {}, []
        from ray.cluster_utils import Cluster

        self._address_file = ray_address_file()
        self._address_before = self._address_file.read_text() if self._address_file.exists() else None
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        for key, value in {**CLUSTER_ENV, "PYTHONPATH": pythonpath}.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value  # the raylets (and their workers) inherit this process's environment
        # Ray read its variables when it was imported (maybe long before, by another test): in this process its
        # address lookups must take 127.0.0.1 too, and a dashboard starting on a busy machine gets more than 60 s.
        import ray.experimental.internal_kv as internal_kv
        from ray._private import ray_constants

        self._saved_constants = {name: getattr(ray_constants, name) for name in PATCHED_CONSTANTS}
        for name, value in PATCHED_CONSTANTS.items():
            setattr(ray_constants, name, value)
        # Starting a node points this process's internal KV at the cluster's GCS; a Ray this process already drives
        # (``ray_local``) gets its own back after each node (:meth:`_internal_kv_kept`), or its internal KV calls
        # would reach this cluster, and Ray would end the process a minute after the cluster's GCS is gone.
        self._saved_kv = internal_kv.global_gcs_client
        self.temp_dir = Path(tempfile.mkdtemp(prefix="lsrmn", dir="/tmp"))
        dashboard, agent, metrics = free_ports(3)
        self.dashboard_url = f"http://127.0.0.1:{dashboard}"
        head = self.types[head_type()]
        head_args = {**head.node_args(self.head_cpus), "temp_dir": str(self.temp_dir), "include_dashboard": True,
                     "dashboard_host": "127.0.0.1", "dashboard_port": dashboard,
                     "dashboard_agent_listen_port": agent, "metrics_export_port": metrics}
        if self.system_config:
            head_args["_system_config"] = self.system_config
        with self._internal_kv_kept():
            self.cluster = Cluster(initialize_head=True, head_node_args=head_args, shutdown_at_exit=False)
        self._address = self.cluster.address
        self._remember(self.cluster.head_node, head.name)
        for name, cpus in self.workers_spec:
            self.add_node(name, cpus)
        self.cluster.wait_for_nodes()
        self._wait_for_dashboard()

    def add_node(self, type_name: str, num_cpus: int):
        """One more raylet of ``type_name`` with ``num_cpus`` CPUs; returns its node id."""
        (metrics,) = free_ports(1)
        with self._internal_kv_kept():
            node = self.cluster.add_node(**self.types[type_name].node_args(num_cpus), metrics_export_port=metrics)
        return self._remember(node, type_name)

    def _remember(self, node, type_name: str) -> str:
        self.nodes[node.node_id] = node
        self.node_type_of[node.node_id] = type_name
        return node.node_id

    def _wait_for_dashboard(self, timeout_s: float = 90.0) -> None:
        """Until the state API answers and lists every node alive."""
        from ray.util.state import list_nodes

        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                alive = [n for n in list_nodes(address=self.dashboard_url, timeout=10) if n.state == "ALIVE"]
                if len(alive) == len(self.nodes):
                    return
            except Exception as err:  # noqa: BLE001 (the dashboard is still starting)
                last = err
            time.sleep(0.5)
        raise RuntimeError(f"the loopback cluster's state API did not list its {len(self.nodes)} nodes: {last}")

    def stop(self) -> None:
        """SIGKILL every process of every node (read from /proc), forget the cluster, put the address file back."""
        try:
            trees: dict[int, str] = {}
            for node in self.nodes.values():
                trees.update(process_tree(node_roots(node)))
            if self.temp_dir is not None:  # also what a node that failed to start left behind
                trees.update(process_tree(processes_naming(str(self.temp_dir))))
            kill_processes(trees)
            if self.cluster is not None:
                for node in list(self.cluster.worker_nodes):
                    self.cluster.remove_node(node, allow_graceful=False)
                if self.cluster.head_node is not None:
                    self.cluster.remove_node(self.cluster.head_node, allow_graceful=False)
                self.cluster.global_state.disconnect()
                self.cluster = None
        finally:
            self._forget_gcs_clients()
            if self._saved_kv is not _UNSAVED:
                _point_internal_kv(self._saved_kv)
            self._saved_kv = _UNSAVED
            self._restore()

    def _forget_gcs_clients(self) -> None:
        """Drop every GCS client this process holds for the cluster: Ray ends a process whose GCS client has not
        reached its GCS for 60 s, which would take the whole test session down a minute after the head is gone."""
        import gc

        for node in self.nodes.values():
            node._gcs_client = None
        self.nodes = {}
        gc.collect()

    @staticmethod
    @contextmanager
    def _internal_kv_kept() -> Iterator[None]:
        """Starting a node points this process's internal KV at the cluster's GCS: give back what it was (the Ray
        this process drives, ``ray_local``'s or this cluster's own, or none)."""
        import ray.experimental.internal_kv as internal_kv

        before = internal_kv.global_gcs_client
        try:
            yield
        finally:
            _point_internal_kv(before)

    def _restore(self) -> None:
        if self._saved_constants:
            from ray._private import ray_constants

            for name, value in self._saved_constants.items():
                setattr(ray_constants, name, value)
            self._saved_constants = {}
        if self._address_file is not None:
            # Put back what was there, unless someone else's cluster wrote the file since (theirs stays).
            now = self._address_file.read_text().strip() if self._address_file.exists() else None
            if now is not None and now == self._address:
                if self._address_before is None:
                    self._address_file.unlink(missing_ok=True)
                else:
                    self._address_file.write_text(self._address_before)
            self._address_file = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None

    # -------------------------------------------------------------- using it
    @property
    def address(self) -> str:
        """The head's GCS address (``127.0.0.1:PORT``): ``--ray-address``, ``RAY_ADDRESS``, ``ray.util.state``."""
        return self.cluster.address

    #: The dashboard, which ``ray.util.state`` asks (given as a URL: with a GCS address, a process already
    #: connected to another Ray, e.g. the session's ``ray_local``, would look the dashboard up in that one).
    dashboard_url: str = ""

    @property
    def head_id(self) -> str:
        return self.cluster.head_node.node_id

    def worker_ids(self, type_name: str | None = None) -> list[str]:
        """The node ids of the live workers (of ``type_name`` only, when given), in the order they were added."""
        return [i for i, t in self.node_type_of.items()
                if i != self.head_id and i not in self.killed and (type_name is None or t == type_name)]

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a driver in another process (an ``lsr`` command) that joins this cluster."""
        return {**os.environ, **CLUSTER_ENV, "RAY_ADDRESS": self.address,
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
                "RAY_DATA_DISABLE_PROGRESS_BARS": "1", **extra}

    def actors(self, class_contains: str = "", state: str | None = "ALIVE") -> list[Any]:
        """The actors whose class name contains ``class_contains`` (``ray.util.state``'s ActorState rows)."""
        from ray.util.state import list_actors

        filters = [("state", "=", state)] if state else []
        rows = list_actors(address=self.dashboard_url, filters=filters, limit=10_000, timeout=30,
                           raise_on_missing_output=False)
        return [a for a in rows if class_contains in (a.class_name or "")]

    def actor_nodes(self, class_contains: str) -> list[str]:
        """The worker nodes holding a live actor whose class name contains ``class_contains``, in the order the
        nodes were added (each once)."""
        held = {a.node_id for a in self.actors(class_contains) if a.node_id and a.node_id != self.head_id}
        return [node_id for node_id in self.worker_ids() if node_id in held]

    def node_of_actor(self, class_contains: str) -> str | None:
        """The id of a worker node holding a live actor whose class name contains ``class_contains`` (None if none)."""
        return next(iter(self.actor_nodes(class_contains)), None)

    def object_store(self, node_id: str) -> tuple[int, int]:
        """``(objects, bytes)`` in the node's own object store now, as its raylet reports them (``GetNodeStats``,
        asked over gRPC: this process need not be a driver of the cluster)."""
        from ray._private.internal_api import node_stats

        node = self.nodes[node_id]
        stats = node_stats("127.0.0.1", node.node_manager_port, include_memory_info=False).store_stats
        return int(stats.num_local_objects), int(stats.object_store_bytes_used)

    @property
    def head_logs(self) -> Path:
        """The head's log folder (the Serve controller's, proxy's and head-pinned replicas' logs are in ``serve/``)."""
        return Path(self.cluster.head_node.get_logs_dir_path())

    def task_nodes(self, name_contains: str = "", *, job_id: str | None = None, state: str | None = "FINISHED"
                   ) -> dict[str, int]:
        """Node id -> count of the tasks (actor tasks included) whose name contains ``name_contains``."""
        from ray.util.state import list_tasks

        filters = [("state", "=", state)] if state else []
        if job_id:
            filters.append(("job_id", "=", job_id))
        tasks = list_tasks(address=self.dashboard_url, filters=filters, limit=10_000, timeout=30,
                           raise_on_missing_output=False)
        counts: dict[str, int] = {}
        for task in tasks:
            if name_contains in (task.name or "") and task.node_id:
                counts[task.node_id] = counts.get(task.node_id, 0) + 1
        return counts

    def kill_node(self, node_id: str) -> None:
        """Kill a worker node ungracefully: SIGKILL its raylet and every process under it (agents, workers,
        actors) at once, as a machine that loses power; then drop it from ``Cluster``'s bookkeeping."""
        if node_id == self.head_id:
            raise ValueError("the head holds the drivers and the GCS: kill a worker node")
        node = self.nodes[node_id]
        kill_processes(process_tree(node_roots(node)))
        self.cluster.remove_node(node, allow_graceful=False)
        self.killed.append(node_id)

