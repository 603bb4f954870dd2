"""Fixtures every stage's tests share: one local Ray per session, multi-node loopback clusters, the shipped samples,
a loopback S3 server, the tiny Llama, and the data builders used by tests of more than one stage (selected rows for
training, mined rows for selection, JSON-lines files). A fixture used by one stage's tests only lives in that
folder's conftest.py."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import SAMPLES

#: Fixtures that mean a whole training run through Ray Train (or a whole pipeline): a test asking for one is
#: ``slow`` (over a minute), whatever module it is in, so that ``-m "not slow"`` keeps a stage's quick tests.
SLOW_FIXTURES = {"train_direct", "train_history", "finetuned", "causal_teacher", "teacher"}
#: Modules whose every test runs stages end to end (a Ray head of their own, S3, the demo).
SLOW_MODULES = {"test_job_submit.py", "test_s3_pipeline.py", "test_train_failures.py", "test_demo_methods.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SLOW_FIXTURES or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)

os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray of 4 logical CPUs, shared by the session's tests; shut down once at the end of the session."""
    import ray

    from lsr.core.ray_utils import init_ray

    init_ray(num_cpus=4)
    yield ray
    ray.shutdown()


@pytest.fixture()
def loopback_cluster():
    """``loopback_cluster(workers=[(node type, CPUs), ...], **options)``: a started :class:`tests.helpers.cluster.
    LoopbackCluster` (a 0-CPU head and those workers of cluster.yaml's node types, on 127.0.0.1; ``options`` such as
    ``system_config`` go to it); every cluster it started is stopped by pid at the end of the test and Ray's
    current-cluster file put back. Tests using it are marked ``@pytest.mark.multinode``."""
    from tests.helpers.cluster import LoopbackCluster

    started: list[LoopbackCluster] = []

    def start(workers: list[tuple[str, int]], **options: Any) -> LoopbackCluster:
        cluster = LoopbackCluster(workers, **options)
        started.append(cluster)
        return cluster.__enter__()

    yield start
    for cluster in reversed(started):
        cluster.stop()


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



class Bucket:
    """The bucket ``runs`` of the loopback S3 server, through the test's boto3 client."""

    name = "runs"

    def __init__(self, client):
        self.client = client

    def keys(self, prefix: str) -> set[str]:
        """The objects under ``prefix`` (pyarrow's empty ``folder/`` markers left out)."""
        listed = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix).get("Contents", [])
        return {item["Key"][len(prefix):] for item in listed if not item["Key"].endswith("/")}

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)


@pytest.fixture()
def bucket(s3) -> Bucket:
    """The loopback S3 server (:func:`s3`) with one bucket, ``runs``."""
    s3.create_bucket(Bucket=Bucket.name)
    return Bucket(s3)


# ---- files of rows ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def write_jsonl() -> Callable[[Path, list[dict]], Path]:
    """``write_jsonl(path, rows)``: one JSON object a line (UTF-8, parent folders made); returns ``path``."""

    def write(path: Path, rows: list[dict]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    return write


#: A generated sub-summary that shares nothing with any gold summary: its row is rejected by score.
UNRELATED = "The weather office forecasts light rain over the hills on Tuesday afternoon."


@pytest.fixture(scope="session")
def mined_rows() -> Callable[..., list[dict]]:
    """``mined_rows(cnndm_path, n=24)``: mined-looking rows built from real CNN/DM pairs, each selection case on
    known rows (row i's case is i % 6): 0, 1 the gold highlights again as sub-summaries (Score1 0.5, kept); 2 an
    unrelated sub-summary (rejected by score); 3 a mining error; 4 an empty rationale; 5 no sub-summaries."""

    def rows_of(cnndm_path: Path, n: int = 24) -> list[dict]:
        rows = []
        for i, line in enumerate(cnndm_path.read_text().splitlines()[:n]):
            source = json.loads(line)
            highlights = [h for h in source["summary"].split("\n") if h.strip()]
            case = i % 6
            row = {
                "id": source["id"],
                "document": source["document"],
                "summary": source["summary"],
                "aspects": ["event"] * len(highlights),
                "sentences": highlights,
                "triples": [[{"subject": "s", "relation": "r", "object": "o"}] for _ in highlights],
                "sub_summaries": highlights,  # case 0, 1: the gold highlights again -> Score1 0.5, kept
                "total_summary": " ".join(highlights),
                "raw_rationale": "raw",
                "engine": "test",
                "error": None,
            }
            if case == 2:
                row["sub_summaries"] = [UNRELATED]
            elif case == 3:
                row["error"] = "teacher returned HTTP 500"
            elif case == 4:
                row.update(aspects=[], sentences=[], triples=[])
            elif case == 5:
                row["sub_summaries"] = []
            rows.append(row)
        return rows

    return rows_of


@pytest.fixture(scope="session")
def write_mined() -> Callable[..., Path]:
    """``write_mined(folder, rows, *, metadata=None, files=2)``: RATIONALES-schema Parquet in ``files`` parts (a
    subset of the columns is enough: the rest are optional); returns ``folder``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lsr.core import schema

    def write(folder: Path, rows: list[dict], *, metadata: dict | None = None, files: int = 2) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        fields = [f for f in schema.RATIONALES if f.name in rows[0]]
        table_schema = pa.schema(fields, metadata=metadata)
        step = -(-len(rows) // files)
        for part in range(files):
            chunk = rows[part * step:(part + 1) * step]
            pq.write_table(pa.Table.from_pylist(chunk, schema=table_schema), folder / f"part-{part}.parquet")
        return folder

    return write


# ---- training runs (training, KD and end-to-end tests) --------------------------------------------------------------


@pytest.fixture(scope="session")
def selection_rows() -> Callable[[Path, int], list[dict]]:
    """``selection_rows(path, n)``: SCORED rows with simple rationales built from the gold summary (a stand-in for
    mined ones), from the first ``n`` rows of a JSON-lines sample."""
    from lsr.data.sentences import split_sentences

    def rows_of(path: Path, n: int) -> list[dict]:
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines()[:n]:
            record = json.loads(line)
            sentences = split_sentences(record["summary"])
            rows.append(
                {
                    "id": record["id"],
                    "document": record["document"],
                    "summary": record["summary"],
                    "aspects": [" ".join(s.split()[:3]) for s in sentences],
                    "sentences": sentences,
                    "triples": [
                        [{"subject": s.split()[0], "relation": "is about", "object": " ".join(s.split()[1:6])}]
                        for s in sentences
                    ],
                    "sub_summaries": sentences,
                    "total_summary": record["summary"],
                    "score": 0.5,
                    "kept": True,
                }
            )
        return rows

    return rows_of


@pytest.fixture(scope="session")
def write_selection() -> Callable[[list[dict], Path], Path]:
    """``write_selection(rows, folder)``: ``rows`` as the selection ``folder/kept/part-0.parquet``; returns it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lsr.core.schema import SCORED

    def write(rows: list[dict], folder: Path) -> Path:
        (folder / "kept").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=SCORED), folder / "kept" / "part-0.parquet")
        return folder

    return write


@pytest.fixture(scope="session")
def train_args() -> tuple[str, ...]:
    """``lsr train`` flags for a short run of the tiny MWF student on two workers (data and output not included)."""
    return (
        "--dataset", "cnndm", "--model", "tiny", "--workers", "2", "--batch-size", "4",
        "--source-max-tokens", "96", "--target-max-tokens", "48", "--rationale-max-tokens", "48",
        "--warmup-steps", "4", "--lr-scale", "0.01", "--checkpoint-every", "2", "--log-every", "1",
    )  # fmt: skip


@pytest.fixture(scope="session")
def train_history() -> Callable[[Path], list[dict]]:
    """``train_history(output)``: the rows of a training run's ``history.jsonl``."""

    def read(output: Path) -> list[dict]:
        return [json.loads(line) for line in (output / "history.jsonl").read_text().splitlines()]

    return read


@pytest.fixture(scope="session")
def train_direct():
    """``train_direct(common, steps, resume)``: ``lsr train`` through the library (not the CLI, which turns
    InputError into exit code 2), to see the error itself."""

    def run(common: list[str], steps: int, resume: bool):
        from lsr.cli.main import build_parser

        argv = ["train", *common, "--max-steps", str(steps), *(["--resume"] if resume else [])]
        args = build_parser().parse_args(argv)
        return args._run(args)

    return run
