"""Every stage reads and writes ``s3://`` through :mod:`lsr.storage`, against a moto server on loopback.

mine -> select -> train (data, checkpoints and the exported model in the bucket, then a resume from the bucket's
checkpoints) -> evaluate (the model read from the bucket through the download cache, the results written back),
and no credential in any object, local file, console output or Ray log.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lsr.cli import main

#: A secret no test data contains: found anywhere written, it leaked.
SECRET = "lsr-test-secret-7f3c9a1e"


@pytest.fixture()
def bucket(s3, monkeypatch):
    """The loopback S3 server with one bucket, reached with a distinctive secret key."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    s3.create_bucket(Bucket="runs")
    return s3


def _keys(client, prefix: str) -> set[str]:
    """The objects under ``prefix`` (pyarrow's empty ``folder/`` markers left out)."""
    listed = client.list_objects_v2(Bucket="runs", Prefix=prefix).get("Contents", [])
    return {item["Key"][len(prefix):] for item in listed if not item["Key"].endswith("/")}


def _read(client, key: str) -> bytes:
    return client.get_object(Bucket="runs", Key=key)["Body"].read()


def _parquet_rows(client, prefix: str) -> int:
    return sum(pq.read_table(io.BytesIO(_read(client, prefix + key))).num_rows
               for key in _keys(client, prefix) if key.endswith(".parquet"))


def test_mine_and_select_write_rows_and_reports_to_s3(ray_local, cnndm_path, bucket, capsys):
    mine = ["mine", "--input", str(cnndm_path), "--output", "s3://runs/mined", "--dataset", "cnndm",
            "--engine", "oracle", "--limit", "12", "--rows-per-file", "6"]
    assert main(mine) == 0
    assert _parquet_rows(bucket, "mined/") == 12
    report = json.loads(_read(bucket, "mined.report.json"))
    assert report["complete"] and report["done"] == 12
    assert "mined.report.md" in _keys(bucket, "")
    assert main(mine) == 0  # a rerun finds every row in the bucket: nothing redone, nothing duplicated
    assert _parquet_rows(bucket, "mined/") == 12
    assert json.loads(_read(bucket, "mined.report.json"))["resumed_from_earlier_runs"] == 12

    assert main(["select", "--input", "s3://runs/mined", "--output", "s3://runs/selected", "--dataset", "cnndm"]) == 0
    keys = _keys(bucket, "selected/")
    assert {"report.json", "report.md", "scores.png"} <= keys
    selected = json.loads(_read(bucket, "selected/report.json"))
    assert _parquet_rows(bucket, "selected/kept/") == selected["kept"]
    assert _parquet_rows(bucket, "selected/rejected/") == 12 - selected["kept"]
    assert SECRET not in capsys.readouterr().out
