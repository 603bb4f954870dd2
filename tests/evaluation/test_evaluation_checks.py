"""``lsr evaluate``'s typed config and the checks it makes before Ray starts: checkpoints, weights, data columns."""

from __future__ import annotations

import argparse
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsr.cli.main import main
from lsr.core.cli_config import add_config_arguments, config_from_args
from lsr.core.errors import InputError
from lsr.evaluation.config import EvaluateConfig
from lsr.evaluation.data_guard import check_test_data
from lsr.model.checkpoint_checks import check_checkpoint

BASE = ["--model", "runs/a/model", "--data", "test.jsonl", "--output", "out", "--dataset", "xsum"]


def _config(argv: list[str]) -> EvaluateConfig:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, EvaluateConfig)
    return config_from_args(parser.parse_args(argv))


def test_flags_fill_one_typed_config_over_the_paper_and_yaml(tmp_path):
    config = _config(BASE)
    assert config.generation.num_beams == 8 and config.source_max_tokens == 512  # XSum's paper values
    assert config.bertscore and config.similarity and not config.gpu and config.nli_model is None
    path = tmp_path / "cfg.yaml"
    path.write_text("generation: {num_beams: 3}\nmodel: {source_max_tokens: 300}\n")
    config = _config([*BASE, "--model", "b=runs/b/model", "--config", str(path), "--max-new-tokens", "20",
                      "--source-max-tokens", "128", "--no-bertscore", "--gpu", "--num-beams", "2"])
    assert config.models == ["runs/a/model", "b=runs/b/model"]
    assert (config.generation.num_beams, config.generation.max_new_tokens) == (2, 20)
    assert config.source_max_tokens == 128 and not config.bertscore and config.gpu
    assert _config([*BASE, "--config", str(path)]).generation.num_beams == 3


def test_only_the_truncation_of_the_model_section_is_a_flag(capsys):
    with pytest.raises(SystemExit):
        _config([*BASE, "--gate-init", "0.1"])  # a training constant: not an evaluation option
    assert "unrecognized arguments: --gate-init" in capsys.readouterr().err


def test_a_wrong_yaml_type_is_one_line_naming_the_key(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("generation: {num_beams: '4'}\n")
    with pytest.raises(InputError, match=r"generation\.num_beams: input should be a valid integer"):
        _config([*BASE, "--config", str(path)])
    with pytest.raises(InputError, match=r"--limit \(limit\): input should be greater than or equal to 1"):
        _config([*BASE, "--limit", "0"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from lsr.model.loading import tiny_model

    path = tmp_path_factory.mktemp("ckpt") / "model"
    model, tokenizer = tiny_model({"mwf_views": []}, seed=3)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _copy(checkpoint, target, *, weights: bytes | None):
    target.mkdir()
    for file in checkpoint.iterdir():
        if file.name != "model.safetensors":
            (target / file.name).write_bytes(file.read_bytes())
    if weights is not None:
        (target / "model.safetensors").write_bytes(weights)
    return target


def test_missing_or_truncated_weights_are_one_line_before_anything_runs(tmp_path, checkpoint, xsum_path, capsys):
    check_checkpoint(str(checkpoint))  # the complete one passes
    weights = (checkpoint / "model.safetensors").read_bytes()
    cases = {
        "missing": (_copy(checkpoint, tmp_path / "missing", weights=None), "no weights"),
        "cut": (_copy(checkpoint, tmp_path / "cut", weights=weights[: len(weights) // 2]), "cut short"),
        "header": (_copy(checkpoint, tmp_path / "header", weights=weights[:20]), "cut short"),
    }
    for path, message in cases.values():
        with pytest.raises(InputError, match=message):
            check_checkpoint(str(path))
        status = main(["evaluate", "--model", str(path), "--data", str(xsum_path), "--output",
                       str(tmp_path / "out"), "--dataset", "xsum"])
        err = capsys.readouterr().err.strip()
        assert status == 2 and len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_sharded_weights_are_checked_through_their_index(tmp_path, checkpoint):
    weights = (checkpoint / "model.safetensors").read_bytes()
    sharded = _copy(checkpoint, tmp_path / "sharded", weights=None)
    (sharded / "model-00001-of-00001.safetensors").write_bytes(weights)
    index = {"metadata": {}, "weight_map": {"any.weight": "model-00001-of-00001.safetensors"}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    check_checkpoint(str(sharded))
    (sharded / "model-00001-of-00001.safetensors").unlink()
    with pytest.raises(InputError, match="model-00001-of-00001.safetensors is missing"):
        check_checkpoint(str(sharded))


def test_data_with_mining_or_selection_columns_is_refused_unless_forced(tmp_path, xsum_path, capsys):
    assert check_test_data(str(xsum_path)) == []  # plain test documents (their extra `source` column is fine)
    mined = tmp_path / "kept"
    mined.mkdir()
    rows = [{"id": "1", "document": "d", "summary": "s", "aspects": ["a"], "kept": True, "score": 0.5}]
    pq.write_table(pa.Table.from_pylist(rows), mined / "part-0.parquet")
    with pytest.raises(InputError, match=r"mining/selection columns \(aspects, kept, score\).*--force"):
        check_test_data(str(mined))
    assert check_test_data(str(mined), force=True) == ["aspects", "kept", "score"]
    assert "evaluating anyway (--force)" in capsys.readouterr().err
