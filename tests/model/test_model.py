"""The MWF student (lsr.model): equivalence with BART, causality, alignment gradients, gates, training."""

from __future__ import annotations

import json

import pytest
import torch

from lsr.core.errors import InputError
from lsr.model import VIEWS, GatedBartConfig, GatedBartForConditionalGeneration, alignment_loss, masked_mean, mwf_fields
from lsr.training.objectives import MwfObjective


def rationale_ids(vocab_size: int, seed: int = 2, size: int = 3, length: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rationale token ids (the first row padded) and their mask, for the target encoder."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab_size, (size, length), generator=gen)
    ids[0, -2:] = 1  # pad
    return ids, ids.ne(1).long()


def test_all_gates_zero_gives_plain_bart_logits_exactly(tiny_bart, batch):
    bart = tiny_bart()
    mwf = GatedBartForConditionalGeneration.from_bart(bart, mwf_gate_init=0.02).eval()
    b = batch()
    mwf.set_gates(0.0)
    with torch.no_grad():
        ours = mwf(b["input_ids"], b["attention_mask"], labels=b["labels"]).logits
        theirs = bart(b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).logits
        assert torch.equal(ours, theirs)
        mwf.set_gates(0.3)
        gated = mwf(b["input_ids"], b["attention_mask"], labels=b["labels"]).logits
    assert (gated - theirs).abs().max() > 1e-3, "non-zero gates must change the decoder's input"


@pytest.mark.parametrize("views", [[], ["ter"], ["ea", "as"]])
def test_any_subset_of_views_and_no_views_is_plain_bart(views, tiny_bart, batch):
    bart = tiny_bart()
    mwf = GatedBartForConditionalGeneration.from_bart(bart, mwf_views=views).eval()
    assert list(mwf.gate_values()) == views
    assert list(mwf.model.encoder.mwf_modules.views if views else []) == views
    b = batch()
    with torch.no_grad():
        out = mwf(**b)
    assert set(out.loss_parts) == {"ce", *(f"align_{v}" for v in views)}
    if not views:
        assert not [n for n, _ in mwf.named_parameters() if "mwf_modules" in n or "view_gates" in n]
        with torch.no_grad():
            reference = bart(b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"])
        assert torch.equal(out.logits, reference.logits)
        assert torch.allclose(out.loss, reference.loss)


def test_decoder_is_causal(tiny_architecture, tiny_mwf, batch):
    mwf = tiny_mwf(mwf_gate_init=0.5)
    b = batch()
    changed = b["labels"].clone()
    k = 4
    changed[:, k] = (changed[:, k] + 5) % tiny_architecture["vocab_size"]
    with torch.no_grad():
        before = mwf(b["input_ids"], b["attention_mask"], labels=b["labels"]).logits
        after = mwf(b["input_ids"], b["attention_mask"], labels=changed).logits
    # Label k is the decoder's input at position k + 1: positions <= k must not see it.
    assert torch.allclose(before[:, : k + 1], after[:, : k + 1], atol=1e-6)
    assert (before[:, k + 1 :] - after[:, k + 1 :]).abs().max() > 1e-4


def test_combined_loss_is_gamma_weighted_ce_plus_alignment_and_ce_ignores_padding(tiny_mwf, batch):
    mwf = tiny_mwf()
    b = batch()
    with torch.no_grad():
        loss, parts = MwfObjective(gamma_ce=0.7, gamma_align=0.3)(mwf, b)
        out = mwf(**b)
        expected = 0.7 * parts["ce"] + 0.3 * (parts["align_ea"] + parts["align_as"] + parts["align_ter"])
        assert torch.allclose(loss, expected)
        logits = out.logits
        real = b["labels"] != -100
        manual_ce = torch.nn.functional.cross_entropy(logits[real], b["labels"][real])
        assert torch.allclose(parts["ce"], manual_ce, atol=1e-6)
        # A pad-token label is padding too: the same loss as with -100 there.
        pad_labels = b["labels"].masked_fill(~real, mwf.config.pad_token_id)
        assert torch.allclose(mwf(**{**b, "labels": pad_labels}).loss_parts["ce"], parts["ce"])


def test_alignment_loss_is_one_minus_cosine_of_mean_pooled_states(tiny_mwf, batch):
    mwf = tiny_mwf()
    b = batch()
    with torch.no_grad():
        out = mwf(**b)
        enc = mwf.model.encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        for k, view in enumerate(VIEWS):
            pooled_module = masked_mean(enc.view_states[:, k], b["attention_mask"])
            pooled_target = b["view_targets"][:, k]
            cos = torch.nn.functional.cosine_similarity(pooled_module, pooled_target, dim=-1)
            assert torch.allclose(out.loss_parts[f"align_{view}"], (1 - cos).mean(), atol=1e-6)
    same = torch.randn(2, 5, 8)
    assert alignment_loss(same, torch.ones(2, 5), masked_mean(same, torch.ones(2, 5))).abs() < 1e-6


def test_alignment_gradient_reaches_modules_and_not_the_frozen_encoder(tiny_mwf, batch):
    mwf = tiny_mwf(mwf_freeze_encoder=True).train()
    out = mwf(**batch())
    sum(v for k, v in out.loss_parts.items() if k.startswith("align_")).backward()
    for view in VIEWS:
        module = mwf.model.encoder.mwf_modules.modules_by_view[view]
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0, f"the {view} module gets no gradient from its alignment loss"
    encoder = mwf.model.encoder
    for name, param in encoder.named_parameters():
        if not name.startswith("mwf_modules.") and param is not mwf.model.shared.weight:
            assert not param.requires_grad and param.grad is None, name


def test_alignment_target_is_a_constant_even_with_a_trainable_encoder(tiny_architecture, tiny_mwf):
    mwf = tiny_mwf().train()
    ids, mask = rationale_ids(tiny_architecture["vocab_size"])
    target = mwf.model.encoder.encode_targets(ids, mask)
    assert not target.requires_grad
    assert mwf.training and mwf.model.encoder.training  # the target's eval mode is temporary
    # Dropout is off for the target: two calls agree in training mode.
    mwf.config.dropout = 0.5
    again = mwf.model.encoder.encode_targets(ids, mask)
    assert torch.equal(target, again)


def test_hierarchical_modules_chain_and_flat_modules_do_not(tiny_mwf, batch):
    b = batch()
    for hierarchical in (True, False):
        mwf = tiny_mwf(mwf_hierarchical=hierarchical)
        with torch.no_grad():
            before = mwf.model.encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).view_states
            ea = mwf.model.encoder.mwf_modules.modules_by_view["ea"]
            ea.layer.fc2.bias.add_(torch.randn_like(ea.layer.fc2.bias))  # not a constant: LayerNorm would undo it
            after = mwf.model.encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).view_states
        ter_changed = (before[:, 2] - after[:, 2]).abs().max() > 1e-4
        assert ter_changed == hierarchical
        assert (before[:, 0] - after[:, 0]).abs().max() > 1e-4


def test_gates_stay_in_unit_interval_after_optimizer_steps_and_never_get_stuck(tiny_mwf, batch):
    mwf = tiny_mwf(mwf_gate_init=0.5).train()
    b = batch()
    gates = [layer.view_gates for layer in mwf.model.decoder.layers]
    optimizer = torch.optim.SGD(gates, lr=1.0)

    def step(direction: float) -> None:
        out = mwf(**b)
        pushed = direction * 10 * torch.stack([g.clamp(0, 1) for g in gates]).sum()
        optimizer.zero_grad()
        (out.loss + pushed).backward()
        optimizer.step()

    for direction in (-1.0, -1.0):  # drive every gate past 1
        step(direction)
        values = [v for per_layer in mwf.gate_values().values() for v in per_layer]
        assert all(0.0 <= v <= 1.0 for v in values)
    assert max(g.max().item() for g in gates) > 1.0  # the raw step left the box; the next forward projects it
    step(1.0)  # this forward projected to 1, then the step pushes far below 0
    assert all(v == 1.0 for v in sum(mwf.gate_values().values(), [])) is False
    step(1.0)
    mwf(**b)
    assert all(0.0 <= g.min().item() and g.max().item() <= 1.0 for g in gates)
    assert all(v == 0.0 for v in sum(mwf.gate_values().values(), []))
    step(-0.01)  # a small push up from exactly 0 moves the gates: the bound does not kill the gradient
    mwf(**b)
    assert all(v > 0.0 for v in sum(mwf.gate_values().values(), []))


def test_frozen_gates_do_not_move(tiny_mwf, batch):
    mwf = tiny_mwf(mwf_gate_init=0.01, mwf_gates_trainable=False).train()
    optimizer = torch.optim.Adam([p for p in mwf.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        mwf(**batch()).loss.backward()
        optimizer.step()
    assert all(abs(v - 0.01) < 1e-7 for v in sum(mwf.gate_values().values(), []))


def test_training_on_a_handful_of_examples_drives_the_loss_down(tiny_architecture, tiny_mwf, batch):
    mwf = tiny_mwf(mwf_gate_init=0.02).train()
    b = batch(size=4)
    optimizer = torch.optim.Adam([p for p in mwf.parameters() if p.requires_grad], lr=3e-3)
    objective = MwfObjective(gamma_ce=0.6, gamma_align=0.4)
    history = []
    for _ in range(40):
        loss, parts = objective(mwf, b)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({k: v.item() for k, v in parts.items()} | {"loss": loss.item()})
    first, last = history[0], history[-1]
    assert last["loss"] < 0.5 * first["loss"]
    assert last["ce"] < first["ce"]
    for view in VIEWS:
        assert last[f"align_{view}"] < first[f"align_{view}"]
    layers = tiny_architecture["decoder_layers"]
    assert mwf.gate_values() != {v: [0.02] * layers for v in VIEWS}, "trainable gates must learn"


def test_config_validates_views_and_takes_the_paper_presets():
    assert GatedBartConfig(mwf_views=["ter", "EA"]).mwf_views == ["ea", "ter"]
    assert GatedBartConfig().mwf_views == list(VIEWS)
    with pytest.raises(InputError, match="unknown MWF view"):
        GatedBartConfig(mwf_views=["ea", "aspect"])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        GatedBartConfig(mwf_gate_init=1.5)
    assert mwf_fields("xsum") == {"mwf_gate_init": 0.01}  # Eq. 11's weights are the MWF objective's, not the model's
    assert mwf_fields("cnndm", views=["ea"])["mwf_views"] == ["ea"]
    with pytest.raises(InputError):
        mwf_fields("cnndm", colour="red")


def test_an_old_checkpoint_with_eq11_weights_in_its_config_loads_and_drops_them(tmp_path, tiny_mwf):
    mwf = tiny_mwf(seed=3, mwf_views=["ea"])
    mwf.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    saved.update(mwf_gamma_ce=0.7, mwf_gamma_align=0.3)  # what checkpoints written before the objective seam hold
    (tmp_path / "config.json").write_text(json.dumps(saved))
    loaded = GatedBartForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.config.mwf_views == ["ea"]
    assert not hasattr(loaded.config, "mwf_gamma_ce") and "mwf_gamma_align" not in loaded.config.to_dict()


def test_a_row_without_a_view_has_no_term_for_it_and_a_batch_without_it_has_none(tiny_mwf, batch):
    mwf = tiny_mwf()
    b = batch()
    with torch.no_grad():
        full = mwf(**b).loss_parts
        enc = mwf.model.encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        b["view_target_mask"][0, 2] = False  # row 0 has no triples
        b["view_targets"][0, 2] = 123.0  # whatever is stored there must not matter
        partial = mwf(**b).loss_parts
        pooled = masked_mean(enc.view_states[1:, 2], b["attention_mask"][1:])
        expected = (1 - torch.nn.functional.cosine_similarity(pooled, b["view_targets"][1:, 2], dim=-1)).mean()
        assert torch.allclose(partial["align_ter"], expected, atol=1e-6)
        assert torch.equal(partial["align_ea"], full["align_ea"])
        b["view_target_mask"][:, 2] = False
        assert set(mwf(**b).loss_parts) == {"ce", "align_ea", "align_as"}


def test_an_ablation_reads_its_own_views_columns_of_the_stored_targets(tiny_mwf, batch):
    mwf = tiny_mwf(mwf_views=["ter"])
    b = batch()
    with torch.no_grad():
        enc = mwf.model.encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        pooled = masked_mean(enc.view_states[:, 0], b["attention_mask"])
        expected = (1 - torch.nn.functional.cosine_similarity(pooled, b["view_targets"][:, 2], dim=-1)).mean()
        assert torch.allclose(mwf(**b).loss_parts["align_ter"], expected, atol=1e-6)


def test_recomputed_modules_give_the_same_gradients_and_keep_fewer_activations(tiny_architecture, batch):
    """`--recompute-modules`: the modules run again in the backward pass (dropout on: the same masks are drawn),
    so every gradient is the one of a plain step, while the forward keeps fewer tensors for the backward."""

    def step(recompute: bool) -> tuple[dict[str, torch.Tensor], int]:
        torch.manual_seed(0)
        model = GatedBartForConditionalGeneration(GatedBartConfig(**{**tiny_architecture, "dropout": 0.3})).train()
        model.recompute_modules(recompute)
        kept: dict[tuple[int, int], int] = {}

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            kept[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
            return tensor

        torch.manual_seed(1)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = model(**batch()).loss
        loss.backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        return grads, sum(kept.values())

    plain, plain_bytes = step(recompute=False)
    again, recomputed_bytes = step(recompute=True)
    assert plain.keys() == again.keys() and any("mwf_modules" in name for name in plain)
    for name, grad in plain.items():
        torch.testing.assert_close(again[name], grad, msg=name)
    assert recomputed_bytes < plain_bytes
