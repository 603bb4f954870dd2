"""Shared fixtures: one local Ray instance per test session and the paths of the samples kept in the repo."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.paths import SAMPLES

os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray with this machine's two cores; shut down once at the end of the session."""
    import ray

    from lsr.core.ray_utils import init_ray

    init_ray(num_cpus=4)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def cnndm_path() -> Path:
    path = SAMPLES / "cnndm_sample.jsonl"
    assert path.exists(), f"the CNN/DM sample is missing at {path}"
    return path


@pytest.fixture(scope="session")
def xsum_path() -> Path:
    path = SAMPLES / "xsum_sample.jsonl"
    assert path.exists(), f"the XSum sample is missing at {path}"
    return path


@pytest.fixture()
def s3(monkeypatch):
    """A moto S3 server on loopback, the AWS variables that point :mod:`lsr.core.storage` at it, and a boto3 client."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its buckets in process-wide state that outlives a server: start every test from none.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
        for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(key, value)
        yield boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """The tiny random Llama (shipped tokenizer, chat template, head_dim 64) that real vLLM serves on the CPU."""
    from lsr.model.tiny_llama import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))

