"""Every stage reads and writes ``s3://`` through :mod:`lsr.core.storage`, against a moto server on loopback.

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

from lsr.cli.main import main

#: A secret no test data contains: found anywhere written, it leaked.
SECRET = "lsr-test-secret-7f3c9a1e"


@pytest.fixture()
def bucket(bucket, monkeypatch):
    """The loopback S3 server's bucket (tests/conftest.py), reached with a distinctive secret key."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return bucket


def _parquet_rows(bucket, prefix: str) -> int:
    return sum(pq.read_table(io.BytesIO(bucket.read(prefix + key))).num_rows
               for key in bucket.keys(prefix) if key.endswith(".parquet"))


def test_mine_and_select_write_rows_and_reports_to_s3(ray_local, cnndm_path, bucket, capsys):
    mine = ["mine", "--input", str(cnndm_path), "--output", "s3://runs/mined", "--dataset", "cnndm",
            "--engine", "oracle", "--limit", "12", "--rows-per-file", "6"]
    assert main(mine) == 0
    assert _parquet_rows(bucket, "mined/") == 12
    report = json.loads(bucket.read("mined.report.json"))
    assert report["complete"] and report["done"] == 12
    assert "mined.report.md" in bucket.keys("")
    assert main(mine) == 0  # a rerun finds every row in the bucket: nothing redone, nothing duplicated
    assert _parquet_rows(bucket, "mined/") == 12
    assert json.loads(bucket.read("mined.report.json"))["resumed_from_earlier_runs"] == 12

    assert main(["select", "--input", "s3://runs/mined", "--output", "s3://runs/selected", "--dataset", "cnndm"]) == 0
    keys = bucket.keys("selected/")
    assert {"report.json", "report.md", "scores.png"} <= keys
    selected = json.loads(bucket.read("selected/report.json"))
    assert _parquet_rows(bucket, "selected/kept/") == selected["kept"]
    assert _parquet_rows(bucket, "selected/rejected/") == 12 - selected["kept"]
    assert SECRET not in capsys.readouterr().out


def _no_secret_anywhere(bucket, *folders: Path, text: str = "") -> None:
    """The secret key is in no object of the bucket, no file under ``folders``, ``text`` or this session's Ray logs."""
    import ray

    assert SECRET not in text
    for key in bucket.keys(""):
        assert SECRET.encode() not in bucket.read(key), f"s3://runs/{key} holds the secret"
    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    for folder in (*folders, logs):
        for path in folder.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), f"{path} holds the secret"


def test_train_resume_and_evaluate_through_s3(
    ray_local, tmp_path, cnndm_path, bucket, capsys, monkeypatch, selection_rows, write_selection, train_args
):
    from lsr.core.model_cache import local_checkpoint
    from lsr.training.checkpoints import STATE_FILE

    cache = tmp_path / "cache"
    monkeypatch.setenv("LSR_CACHE_DIR", str(cache))
    local = write_selection(selection_rows(cnndm_path, 8), tmp_path / "selected")
    bucket.put("selected/kept/part-0.parquet", (local / "kept" / "part-0.parquet").read_bytes())
    common = [*train_args, "--views", "none", "--data", "s3://runs/selected", "--output", "s3://runs/train",
              "--checkpoint-every", "1", "--workers", "1"]
    assert main(["train", *common, "--max-steps", "2"]) == 0
    keys = bucket.keys("train/")
    assert {"history.jsonl", "train_report.json", "model/config.json", "model/model.safetensors"} <= keys
    assert any(k.startswith("checkpoints/train/checkpoint_") and k.endswith(STATE_FILE) for k in keys)
    report = json.loads(bucket.read("train/train_report.json"))
    assert report["model"] == "s3://runs/train/model" and report["latest_checkpoint"].startswith("s3://runs/train/")

    assert main(["train", *common, "--max-steps", "3", "--resume"]) == 0  # restored from the bucket's checkpoint
    history = [json.loads(line) for line in bucket.read("train/history.jsonl").decode().splitlines()]
    assert [row["step"] for row in history] == [1, 2, 3]
    assert history[2]["lr"] == pytest.approx(0.01 * min(3 ** -0.5, 3 * 4 ** -1.5))  # the schedule went on
    assert json.loads(bucket.read("train/train_report.json"))["steps"] == 3

    evaluate = ["evaluate", "--model", "s3://runs/train/model", "--data", str(cnndm_path), "--output",
                "s3://runs/eval", "--dataset", "cnndm", "--limit", "2", "--no-bertscore", "--no-similarity",
                "--latency-batches", "0", "--num-beams", "1", "--max-new-tokens", "4"]
    assert main(evaluate) == 0
    assert {"results.json", "results.md", "train/predictions.parquet"} == bucket.keys("eval/")
    results = json.loads(bucket.read("eval/results.json"))
    assert results["models"][0]["path"] == "s3://runs/train/model"
    cached = sorted(p for p in cache.rglob("*") if p.is_file())
    assert any(p.name == "config.json" for p in cached) and any(p.name == "train_report.json" for p in cached)
    first = capsys.readouterr().out
    assert first.count("downloading s3://runs/train/model") == 1  # the driver's check; the actors reused it
    local = local_checkpoint("s3://runs/train/model")  # the same version again: the cache, no download
    assert "downloading" not in capsys.readouterr().out
    assert sorted(p for p in cache.rglob("*") if p.is_file()) == cached and Path(local, "config.json").is_file()
    bucket.put("train/model/extra.txt", b"changed")  # a new version: a new folder
    assert local_checkpoint("s3://runs/train/model") != local and Path(local).is_dir()
    assert "downloading s3://runs/train/model" in capsys.readouterr().out
    _no_secret_anywhere(bucket, tmp_path, text=first)


def test_serve_loads_a_model_from_s3_with_its_runs_report(tmp_path, bucket, monkeypatch):
    """``lsr serve --model s3://RUN/model``: the checks and the replica's loader read the cached download, and the
    run's report (cached beside it) still names the data set."""
    from lsr.model.loading import tiny_model
    from lsr.serving.config import ServeConfig
    from lsr.serving.summarizer import ServedModel, check_servable, model_id

    monkeypatch.setenv("LSR_CACHE_DIR", str(tmp_path / "cache"))
    model, tokenizer = tiny_model({"mwf_views": ["ea"]}, seed=1)
    model.save_pretrained(tmp_path / "run" / "model")
    tokenizer.save_pretrained(tmp_path / "run" / "model")
    for path in (tmp_path / "run" / "model").iterdir():
        bucket.put(f"served/model/{path.name}", path.read_bytes())
    bucket.put("served/train_report.json", json.dumps({"config": {"dataset": "xsum"}}).encode())
    config = ServeConfig.model_validate({"model": "s3://runs/served/model"})
    assert check_servable(config) == "xsum" and model_id(config) == "served"
    served = ServedModel(config)
    assert served.dataset == "xsum" and served.model.config.mwf_views == ["ea"]
    assert len(list((tmp_path / "cache" / "models").iterdir())) == 1  # checks and loader share one download


def test_staged_upload_replaces_a_sub_folder_whole_and_a_failed_block_uploads_nothing(tmp_path, bucket):
    from lsr.core.storage import staged_folder

    with staged_folder("s3://runs/out") as local:
        (local / "model").mkdir()
        (local / "model" / "old-shard.bin").write_bytes(b"old")
        (local / "report.json").write_text("{}")
    assert bucket.keys("out/") == {"model/old-shard.bin", "report.json"}
    with staged_folder("s3://runs/out") as local:
        (local / "model").mkdir()
        (local / "model" / "weights.bin").write_bytes(b"new")
    assert bucket.keys("out/") == {"model/weights.bin", "report.json"}  # no shard of the older export left
    with pytest.raises(RuntimeError), staged_folder("s3://runs/out") as local:
        (local / "report.json").write_text('{"partial": true}')
        raise RuntimeError("export failed")
    assert bucket.read("out/report.json") == b"{}"


def test_a_model_uri_that_holds_nothing_is_one_line(bucket):
    from lsr.core.errors import InputError
    from lsr.core.model_cache import local_checkpoint

    assert local_checkpoint("/some/local/folder") == "/some/local/folder"
    with pytest.raises(InputError, match="no objects under this prefix"):
        local_checkpoint("s3://runs/nothing/model")
    with pytest.raises(InputError, match="cannot list it"):
        local_checkpoint("s3://no-such-bucket/model")
    with pytest.raises(InputError, match="only local folders and s3://"):
        local_checkpoint("gs://bucket/model")
