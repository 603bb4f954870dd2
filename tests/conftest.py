"""Shared fixtures: one local Ray instance per test session and the paths of the shared samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LLM_OUTPUTS = REPO.parent / "shared" / "llm_outputs"

os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray with this machine's two cores; shut down once at the end of the session."""
    import ray

    from lsr.ray_utils import init_ray

    init_ray(num_cpus=4)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def cnndm_path() -> Path:
    path = SHARED_DATA / "cnndm_dev.jsonl"
    assert path.exists(), f"the shared CNN/DM sample is missing at {path}"
    return path


@pytest.fixture(scope="session")
def xsum_path() -> Path:
    path = SHARED_DATA / "xsum_dev.jsonl"
    assert path.exists(), f"the shared XSum sample is missing at {path}"
    return path
