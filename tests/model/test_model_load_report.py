"""Building the MWF student from a BART checkpoint: no MISSING table for the new weights, a real gap still shown."""

from __future__ import annotations

from safetensors.torch import load_file, save_file

from lsr.model import GatedBartForConditionalGeneration


def _shown(capfd, caplog) -> str:
    """What reached the terminal or the logging system (HF's report is a logged warning)."""
    out, err = capfd.readouterr()
    return out + err + caplog.text


def test_from_bart_does_not_list_the_new_mwf_weights_as_missing(tmp_path, capfd, caplog, tiny_bart):
    tiny_bart(seed=3).save_pretrained(tmp_path)
    capfd.readouterr()
    GatedBartForConditionalGeneration.from_bart(str(tmp_path), mwf_gate_init=0.02)
    shown = _shown(capfd, caplog)
    assert "MISSING" not in shown and "mwf_modules" not in shown


def test_a_missing_bart_weight_is_still_reported(tmp_path, capfd, caplog, tiny_bart):
    tiny_bart(seed=3).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    dropped = next(name for name in weights if "fc1.weight" in name)
    del weights[dropped]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    capfd.readouterr()
    GatedBartForConditionalGeneration.from_bart(str(tmp_path))
    shown = _shown(capfd, caplog)
    assert "MISSING" in shown and dropped in shown
    assert "mwf_modules" not in shown
    assert GatedBartForConditionalGeneration._keys_to_ignore_on_load_missing == ["final_logits_bias"]
