"""Selection and evaluation write their outputs through lsr.core.storage: an ``s3://`` output lands in the bucket."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq


def test_selection_writes_partition_and_report_to_s3(ray_local, tmp_path, cnndm_path, bucket, mined_rows, write_mined):
    from lsr.selection import rule_for, run_selection

    mined = write_mined(tmp_path / "mined", mined_rows(cnndm_path, 6), files=1)
    result = run_selection(str(mined), "s3://runs/selected", rule_for("cnndm"), dataset="cnndm")
    keys = bucket.keys("selected/")
    assert {"report.json", "report.md", "scores.png"} <= keys
    assert any(k.startswith("kept/") for k in keys) and any(k.startswith("rejected/") for k in keys)
    assert json.loads(bucket.read("selected/report.json"))["kept"] == result.kept
    kept_rows = sum(pq.read_table(io.BytesIO(bucket.read(f"selected/{k}"))).num_rows
                    for k in keys if k.startswith("kept/"))
    assert kept_rows == result.kept


def test_evaluation_writes_tables_and_predictions_to_s3(ray_local, tmp_path, xsum_path, bucket):
    from lsr.core.config import resolve
    from lsr.evaluation.config import EvaluateConfig
    from lsr.evaluation.job import evaluate
    from lsr.model.loading import tiny_model

    model, tokenizer = tiny_model({"mwf_views": []}, seed=4)
    model.save_pretrained(tmp_path / "plain")
    tokenizer.save_pretrained(tmp_path / "plain")
    config = resolve(EvaluateConfig, {
        "models": [str(tmp_path / "plain")], "data": str(xsum_path), "output": "s3://runs/eval", "dataset": "xsum",
        "limit": 2, "bertscore": False, "similarity": False, "latency_batches": 0,
        "generation": {"num_beams": 1, "min_new_tokens": 2, "max_new_tokens": 4},
    })
    [result] = evaluate(config)
    assert result.predictions == "s3://runs/eval/plain/predictions.parquet"
    assert {"results.json", "results.md", "plain/predictions.parquet"} == bucket.keys("eval/")
    rows = pq.read_table(io.BytesIO(bucket.read("eval/plain/predictions.parquet"))).to_pylist()
    assert len(rows) == 2 and all(r["prediction"] for r in rows)
    assert json.loads(bucket.read("eval/results.json"))["models"][0]["name"] == "plain"
