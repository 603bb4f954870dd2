"""An autoscaler config for Ray's fake multi-node provider, shaped like the repository's ``cluster.yaml``.

The node types keep ``cluster.yaml``'s names and roles (a head that runs no stage work, one CPU worker for reading
and the driver's tasks, mining nodes from zero up) at a size one machine holds: the mining nodes give CPUs, not
GPUs, because the loopback cluster's vLLM runs on the CPU. The provider flags are those of Ray's own fake
multi-node example (absent from Ray 2.60's wheel): a node's "IP" is its node id, and no SSH updater runs.
``gcs_address`` is given so that the provider never looks up the machine's outward address.
"""

from __future__ import annotations

from typing import Any

#: The head's node type as the fake provider tags it.
HEAD_TYPE = "ray.head.default"


def fake_cluster(gcs_port: int, *, max_mining_nodes: int = 3, idle_timeout_minutes: float = 0.2) -> dict[str, Any]:
    """The config ``ray start --head --autoscaling-config`` reads (``idle_timeout_minutes``: an idle mining node
    is removed after that long; ``cluster.yaml`` says 10)."""
    return {
        "cluster_name": "lsr-loopback",
        "max_workers": 1 + max_mining_nodes,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {
            "type": "fake_multinode",
            "gcs_address": f"127.0.0.1:{gcs_port}",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "auth": {},
        "docker": {},
        "available_node_types": {
            HEAD_TYPE: {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "cpu_worker": {"resources": {"CPU": 1}, "node_config": {}, "min_workers": 1, "max_workers": 1},
            "mining_gpu": {"resources": {"CPU": 1}, "node_config": {}, "min_workers": 0,
                           "max_workers": max_mining_nodes},
        },
        "head_node_type": HEAD_TYPE,
        **{key: [] for key in ("initialization_commands", "setup_commands", "head_setup_commands",
                               "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands",
                               "cluster_synced_files", "rsync_exclude", "rsync_filter")},
        "file_mounts": {},
        "file_mounts_sync_continuously": False,
    }  # fmt: skip
