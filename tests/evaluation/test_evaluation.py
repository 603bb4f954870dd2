"""Evaluation: generation over Ray Data with two checkpoints, scores per example, one Table-2-style report."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from lsr.cli.main import main
from lsr.core.config import resolve
from lsr.core.errors import InputError
from lsr.evaluation.config import EvaluateConfig
from lsr.evaluation.job import evaluate
from lsr.evaluation.results import markdown_table, model_names


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny MWF student and a tiny plain baseline, saved like training saves them (untrained: enough here)."""
    from lsr.model.loading import tiny_model

    root = tmp_path_factory.mktemp("models")
    paths = {}
    for name, views in (("mwf", ["ea", "as", "ter"]), ("baseline", [])):
        model, tokenizer = tiny_model({"mwf_views": views}, seed=1)
        model.save_pretrained(root / name / "model")
        tokenizer.save_pretrained(root / name / "model")
        paths[name] = str(root / name / "model")
    return paths


def test_evaluate_writes_one_row_per_model_and_per_example_scores(ray_local, tmp_path, xsum_path, checkpoints):
    output = tmp_path / "eval"
    args = ["evaluate", "--model", checkpoints["mwf"], "--model", f"plain={checkpoints['baseline']}",
            "--data", str(xsum_path), "--output", str(output), "--dataset", "xsum", "--limit", "3",
            "--num-beams", "2", "--min-new-tokens", "3", "--max-new-tokens", "8", "--source-max-tokens", "128",
            "--bertscore-model", "minilm"]  # fmt: skip
    assert main(args) == 0

    results = json.loads((output / "results.json").read_text())
    assert [m["name"] for m in results["models"]] == ["mwf", "plain"]
    assert results["examples"] == 3 and results["generation"]["num_beams"] == 2
    assert results["bertscore_layer"] == 6
    table = (output / "results.md").read_text()
    assert "| Model | XSum R-1 | R-2 | R-L | BS | n |" in table and "| plain |" in table
    for model in results["models"]:
        rows = pq.read_table(model["predictions"]).to_pylist()
        assert len(rows) == 3
        assert all(r["prediction"] for r in rows)
        assert {"rouge1", "rouge2", "rougeLsum", "bertscore", "summary", "id"} <= set(rows[0])
        assert model["rouge1"] == pytest.approx(sum(r["rouge1"] for r in rows) / 3)
        assert model["bertscore"] == pytest.approx(sum(r["bertscore"] for r in rows) / 3)
        assert 0.0 < model["bertscore"] <= 1.0


def test_a_model_folder_that_is_not_a_checkpoint_fails_before_generation(tmp_path, xsum_path):
    config = resolve(EvaluateConfig, {"models": [str(tmp_path / "nope")], "data": str(xsum_path),
                                       "output": str(tmp_path / "o"), "dataset": "xsum", "bertscore": False})
    with pytest.raises(InputError, match="no such directory"):
        evaluate(config)


def test_model_names_are_unique_and_named_like_their_run():
    named = model_names(["runs/mwf/model", "runs/base/model", "x=runs/mwf/model", "runs/mwf/model"])
    assert [n for n, _ in named] == ["mwf", "base", "x", "mwf-2"]
    from lsr.evaluation.results import ModelResult

    row = ModelResult("m", "p", 2, "f", {"rouge1": 0.4412, "rouge2": 0.2113, "rougeLsum": 0.40581, "bertscore": None})
    assert "| m | 44.12 | 21.13 | 40.58 | - | 2 |" in markdown_table([row], "cnndm")
