"""The MWF student at inference and on disk: beam search, KV cache, presets, save/load, BART checkpoints."""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM

from lsr.core.config import preset
from lsr.model import GatedBartConfig, GatedBartForConditionalGeneration


def _count_module_runs(model: GatedBartForConditionalGeneration) -> list[int]:
    calls: list[int] = []
    model.model.encoder.mwf_modules.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_beam_search_is_deterministic_runs_modules_once_and_matches_no_cache(tiny_mwf, batch):
    mwf = tiny_mwf(seed=3, mwf_gate_init=0.5, init_std=0.5)
    b = batch()
    calls = _count_module_runs(mwf)
    kwargs = dict(attention_mask=b["attention_mask"], num_beams=4, max_new_tokens=10, no_repeat_ngram_size=3)
    first = mwf.generate(b["input_ids"], **kwargs)
    assert len(calls) == 1, "the rationale modules must run once per input, not once per decoding step"
    second = mwf.generate(b["input_ids"], **kwargs)
    assert torch.equal(first, second)
    without_cache = mwf.generate(b["input_ids"], use_cache=False, **kwargs)
    assert torch.equal(first, without_cache)
    assert first.shape[0] == b["input_ids"].shape[0] and first.shape[1] > 2


def test_cached_decoding_scores_equal_full_recomputation(tiny_mwf, batch):
    """With non-zero gates the fusion must happen on the first step and be reused from the cache after it."""
    mwf = tiny_mwf(seed=4, mwf_gate_init=0.7, init_std=0.5)
    b = batch()
    kwargs = dict(
        attention_mask=b["attention_mask"],
        num_beams=1,
        do_sample=False,
        max_new_tokens=8,
        min_new_tokens=8,
        output_scores=True,
        return_dict_in_generate=True,
    )
    cached = mwf.generate(b["input_ids"], use_cache=True, **kwargs)
    full = mwf.generate(b["input_ids"], use_cache=False, **kwargs)
    assert torch.equal(cached.sequences, full.sequences)
    for step_cached, step_full in zip(cached.scores, full.scores, strict=True):
        finite = torch.isfinite(step_full)
        assert torch.allclose(step_cached[finite], step_full[finite], atol=1e-4)
    mwf.set_gates(0.0)
    plain = mwf.generate(b["input_ids"], use_cache=True, **kwargs)
    assert not all(torch.allclose(x, y) for x, y in zip(cached.scores, plain.scores, strict=True))


def test_each_layer_fuses_once_per_generate_call_and_no_cache_argument_warns(recwarn, tiny_mwf, batch):
    """Once the cross-attention keys/values are cached a layer must skip the fusion. transformers 5.24 renamed the
    layer's cache argument (past_key_values -> cache): a layer reading the other name sees no cache, fuses at every
    step for nothing, and passes both names on, which warns at every call."""
    mwf = tiny_mwf(seed=6, mwf_gate_init=0.5, init_std=0.5)
    b = batch()
    fused: list[int] = []
    for layer in mwf.model.decoder.layers:
        original = layer.fuse
        layer.fuse = lambda states, views, _f=original: fused.append(1) or _f(states, views)
    mwf.generate(b["input_ids"], attention_mask=b["attention_mask"], num_beams=2, max_new_tokens=6, min_new_tokens=6)
    assert len(fused) == len(mwf.model.decoder.layers)
    assert not [w for w in recwarn if "past_key_values" in str(w.message)]


def test_generation_presets_become_the_model_defaults(tiny_mwf, batch):
    mwf = tiny_mwf(seed=5, init_std=0.5)
    config = mwf.apply_generation_preset("xsum")
    expected = preset("xsum").generation
    assert (config.num_beams, config.length_penalty) == (expected.num_beams, expected.length_penalty)
    assert (config.min_new_tokens, config.max_new_tokens) == (expected.min_new_tokens, expected.max_new_tokens)
    assert config.no_repeat_ngram_size == 3
    out = mwf.generate(batch()["input_ids"][:2])
    assert expected.min_new_tokens < out.shape[1] <= expected.max_new_tokens + 1
    assert mwf.apply_generation_preset("cnndm").num_beams == 4


def test_save_and_load_round_trip(tmp_path, tiny_mwf, batch):
    mwf = tiny_mwf(seed=6, mwf_views=["ea", "ter"], mwf_gate_init=0.01, mwf_freeze_encoder=True, init_std=0.5)
    mwf.set_gates({"ea": [0.1, 0.2, 0.3], "ter": 0.9})
    mwf.apply_generation_preset("cnndm")
    mwf.save_pretrained(tmp_path)
    b = batch()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "gated_bart"
    for loader in (GatedBartForConditionalGeneration, AutoModelForSeq2SeqLM):
        loaded = loader.from_pretrained(tmp_path).eval()
        assert type(loaded) is GatedBartForConditionalGeneration
        assert loaded.config.mwf_views == ["ea", "ter"] and loaded.config.mwf_freeze_encoder
        assert loaded.gate_values() == mwf.gate_values()
        assert loaded.gate_values()["ea"] == [torch.tensor(v).item() for v in (0.1, 0.2, 0.3)]
        assert loaded.generation_config.num_beams == 4
        assert not loaded.model.encoder.layers[0].fc1.weight.requires_grad
        assert loaded.model.shared.weight.requires_grad
        with torch.no_grad():
            a = mwf(**b)
            c = loaded(**b)
        assert torch.equal(a.logits, c.logits)
        assert torch.equal(a.loss, c.loss)
        assert a.loss_parts.keys() == c.loss_parts.keys() == {"ce", "align_ea", "align_ter"}
        gen = dict(num_beams=2, max_new_tokens=6, min_new_tokens=1)
        assert torch.equal(mwf.generate(b["input_ids"], **gen), loaded.generate(b["input_ids"], **gen))


def test_from_bart_local_checkpoint_copies_weights_and_initialises_the_new_parts(
    tmp_path, tiny_architecture, tiny_bart
):
    bart = tiny_bart(seed=7)
    bart.save_pretrained(tmp_path)
    mwf = GatedBartForConditionalGeneration.from_bart(str(tmp_path), mwf_gate_init=0.01, mwf_hierarchical=False)
    assert isinstance(mwf.config, GatedBartConfig) and not mwf.config.mwf_hierarchical
    bart_weights = bart.state_dict()
    for name, tensor in mwf.state_dict().items():
        if name in bart_weights:
            assert torch.equal(tensor, bart_weights[name]), name
        else:
            assert ".mwf_modules." in name or name.endswith("view_gates"), name
    layers = tiny_architecture["decoder_layers"]
    assert mwf.gate_values() == {v: [torch.tensor(0.01).item()] * layers for v in ("ea", "as", "ter")}
    module_weight = mwf.model.encoder.mwf_modules.modules_by_view["ea"].layer.fc1.weight
    assert (
        torch.isfinite(module_weight).all()
        and 0.5 * mwf.config.init_std < module_weight.std() < 2 * mwf.config.init_std
    )
    assert mwf.model.encoder.embed_tokens.weight is mwf.model.shared.weight
    assert mwf.lm_head.weight is mwf.model.shared.weight
