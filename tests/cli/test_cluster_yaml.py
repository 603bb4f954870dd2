"""cluster.yaml passes Ray's own autoscaler validation (offline) and fits the recipe's mining engine."""

from __future__ import annotations

import copy
import socket

import pytest
import yaml

from lsr.cli.pipeline_recipe import MINING_NODE_GPUS, RecipeConfig
from tests.helpers.paths import REPO

CLUSTER_YAML = REPO / "cluster.yaml"


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach AWS (or anything else) fails the test instead of waiting on the network."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"cluster.yaml validation tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _validated(config: dict) -> dict:
    """What `ray up` does to a config before it talks to the cloud: fill the provider's defaults, then validate
    against Ray's JSON schema (ray/autoscaler/ray-schema.json) and its cross-field rules."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def _load() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_cluster_yaml_passes_ray_autoscaler_validation(offline):
    prepared = _validated(_load())
    assert prepared["head_node_type"] == "head"
    assert prepared["available_node_types"]["head"]["max_workers"] == 0


def test_the_validation_refuses_a_broken_config(offline):
    import jsonschema

    broken = _load()
    broken["available_node_types"]["mining_gpu"]["gpus"] = 8  # not a field Ray knows
    with pytest.raises(jsonschema.ValidationError):
        _validated(broken)
    broken = _load()
    broken["available_node_types"]["mining_gpu"]["resources"]["GPU"] = "eight"
    with pytest.raises(jsonschema.ValidationError):
        _validated(broken)


def test_mining_nodes_fit_the_recipe_engine_and_pin_it():
    recipe = RecipeConfig.model_fields
    nodes = _load()["available_node_types"]
    mining = nodes["mining_gpu"]["resources"]
    assert mining["GPU"] == MINING_NODE_GPUS
    tp = recipe["tensor_parallel_size"].default
    assert mining["GPU"] % tp == 0, "a mining node must hold whole tensor-parallel replicas"
    accelerator = recipe["accelerator_type"].default
    assert mining.get(f"accelerator_type:{accelerator}") == 1  # what `lsr mine --accelerator-type` asks for
    # no other node type offers that accelerator, so the engines land on mining nodes only
    others = [name for name, node in nodes.items() if name != "mining_gpu"
              and f"accelerator_type:{accelerator}" in node.get("resources", {})]
    assert others == []
    # the head runs the job drivers only
    assert nodes["head"]["resources"] == {"CPU": 0}
    # the cluster can hold the recipe's largest mining fleet
    max_replicas = recipe["max_replicas"].default
    assert nodes["mining_gpu"]["max_workers"] * mining["GPU"] >= max_replicas * tp


def test_every_node_starts_with_token_authentication():
    config = _load()
    starts = [c for key in ("head_start_ray_commands", "worker_start_ray_commands") for c in config[key]
              if "ray start" in c]
    assert len(starts) == 2
    assert all("RAY_AUTH_MODE=token" in c for c in starts)
    assert any(remote.endswith("/.ray/auth_token") for remote in config["file_mounts"])
