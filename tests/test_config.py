"""The paper's per-data-set defaults, and overriding them from YAML."""

from __future__ import annotations

import pytest

from lsr.config import load_preset, preset
from lsr.errors import InputError


def test_paper_defaults_per_dataset():
    cnndm, xsum = preset("cnndm"), preset("xsum")
    assert (cnndm.selection.score, cnndm.selection.threshold) == ("score1", 0.85)
    assert (xsum.selection.score, xsum.selection.threshold, xsum.selection.third_rouge) == ("score2", 0.65, "rougeL")
    assert (cnndm.model.gate_init, cnndm.model.gamma_ce, cnndm.model.gamma_align) == (0.02, 0.6, 0.4)
    assert (xsum.model.gate_init, xsum.model.gamma_ce, xsum.model.gamma_align) == (0.01, 0.7, 0.3)
    assert cnndm.generation.as_generate_kwargs()["num_beams"] == 4
    assert xsum.generation.as_generate_kwargs()["length_penalty"] == 0.6
    assert (cnndm.model.source_max_tokens, xsum.model.target_max_tokens) == (1024, 80)


def test_yaml_overrides_nested_fields(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("selection:\n  threshold: 0.5\n  third_rouge: rouge3\nmodel:\n  warmup_steps: 100\n")
    cfg = load_preset("xsum", path)
    assert cfg.selection.threshold == 0.5 and cfg.selection.third_rouge == "rouge3"
    assert cfg.model.warmup_steps == 100 and cfg.model.gate_init == 0.01


def test_unknown_settings_and_datasets_are_clear_errors(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("selection:\n  treshold: 0.5\n")
    with pytest.raises(InputError, match="unknown setting 'treshold'"):
        load_preset("cnndm", path)
    with pytest.raises(InputError, match="unknown data set"):
        preset("gigaword")
