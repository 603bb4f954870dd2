"""The paper's per-data-set defaults, and overriding them from YAML."""

from __future__ import annotations

import pytest

from lsr.core.config import load_preset, preset
from lsr.core.errors import InputError


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


# ---------------------------------------------------------------- strict types, one error line naming the key


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("selection:\n  threshold: yes\n", r"selection\.threshold: input should be a valid number \(got True\)"),
        ("selection: 0.8\n", r"selection: input should be an object"),
        ("model:\n  warmup_steps: '100'\n", r"model\.warmup_steps: input should be a valid integer \(got '100'\)"),
        ("model:\n  gate_init: [0.1]\n", r"model\.gate_init: input should be a valid number"),
        ("mining: {temperature: hot}\n", r"mining\.temperature: input should be a valid number"),
        ("generation: {num_beams: 0}\n", r"generation\.num_beams: input should be greater than or equal to 1"),
        ("name: xsum\n", r"unknown setting 'name'"),
    ],
)
def test_yaml_values_are_type_checked_not_coerced(tmp_path, yaml_text, expected):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml_text)
    with pytest.raises(InputError, match=expected) as err:
        load_preset("cnndm", path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def _select_config(argv: list[str]):
    """``lsr select``'s parser (flags generated from SelectConfig) and the config it resolves."""
    import argparse

    from lsr.core.cli_config import add_config_arguments, config_from_args
    from lsr.selection.config import SelectConfig

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, SelectConfig)
    return config_from_args(parser.parse_args(argv))


def test_flags_are_generated_from_the_stage_model_and_layer_over_yaml_and_paper(tmp_path):
    base = ["--input", "in", "--output", "out", "--dataset", "xsum"]
    assert _select_config(base).selection.threshold == 0.65  # the paper's value for XSum
    path = tmp_path / "cfg.yaml"
    path.write_text("selection: {threshold: 0.5, third_rouge: rouge3}\n")
    from_yaml = _select_config([*base, "--config", str(path)])
    assert (from_yaml.selection.threshold, from_yaml.selection.third_rouge) == (0.5, "rouge3")
    flagged = _select_config([*base, "--config", str(path), "--threshold", "0.4", "--force"])
    assert (flagged.selection.threshold, flagged.selection.third_rouge, flagged.force) == (0.4, "rouge3", True)


def test_a_bad_flag_value_names_the_flag():
    with pytest.raises(InputError, match=r"--threshold \(selection\.threshold\): input should be less than or equal"):
        _select_config(["--input", "in", "--output", "out", "--dataset", "cnndm", "--threshold", "1.5"])
