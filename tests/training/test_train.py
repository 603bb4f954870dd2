"""Training: rationale texts, padding, Noam, the tiny preset, objectives, and 2-worker Ray Train runs that resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from lsr.cli.main import main
from lsr.core.errors import InputError
from lsr.model.batching import LABEL_PAD, pad_batch, tokenize_rows
from lsr.model.views import rationale_text
from lsr.training.schedule import noam_lr, noam_scheduler

# ---- pure pieces ------------------------------------------------------------------------------------------------


def test_rationale_texts_join_views_in_the_documented_format():
    assert rationale_text("ea", ["Clinton endorsement", " ", "LPAC launch"]) == "Clinton endorsement ; LPAC launch"
    assert rationale_text("as", ["One.", "Two."]) == "One. Two."
    triples = [[{"subject": "LPAC", "relation": "backs", "object": "Clinton"}], [], [{"subject": "King", "relation":
                "co-chairs", "object": None}]]
    assert rationale_text("ter", triples) == "LPAC # backs # Clinton ; King # co-chairs # "
    assert rationale_text("ter", None) == ""


def test_pad_batch_masks_padding_and_ignores_padded_labels():
    batch = {"input_ids": [[0, 5, 2], [0, 2]], "labels": [[0, 7, 8, 2], [0, 2]], "ea_input_ids": [[0, 9, 2], [0, 2]]}
    out = pad_batch(batch, pad_token_id=1)
    assert out["input_ids"].tolist() == [[0, 5, 2], [0, 2, 1]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert out["labels"].tolist() == [[0, 7, 8, 2], [0, 2, LABEL_PAD, LABEL_PAD]]
    assert out["ea_attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert "labels_attention_mask" not in out


def test_noam_scheduler_gives_the_papers_rate_at_every_update():
    warmup, scale = 4, 2e-3
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([weight], lr=scale)
    scheduler = noam_scheduler(optimizer, warmup)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [scale * min(k**-0.5, k * warmup**-1.5) for k in range(1, 9)]
    assert seen == pytest.approx(expected)
    assert max(seen) == pytest.approx(noam_lr(warmup, scale, warmup)) == pytest.approx(scale / math.sqrt(warmup))


def test_tiny_tokenizer_is_rebuilt_identically_and_has_barts_special_ids(tmp_path):
    from lsr.model.loading import TINY_TOKENIZER_DIR, build_tiny_tokenizer_files, tiny_tokenizer

    build_tiny_tokenizer_files(tmp_path)
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / name).read_bytes() == (TINY_TOKENIZER_DIR / name).read_bytes()
    tok = tiny_tokenizer()
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    ids = tok("Ünïcode text the samples never saw: 42 €.")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == "Ünïcode text the samples never saw: 42 €."


def _tiny_batch(cnndm_path, selection_rows):
    from lsr.model.loading import tiny_tokenizer
    from lsr.training.targets import encode_rows, fixed_encoder

    tok = tiny_tokenizer()
    rows = selection_rows(cnndm_path, 3)
    columns = {key: [r[key] for r in rows] for key in rows[0]}
    ids = tokenize_rows(columns, tok, source_max_tokens=64, target_max_tokens=32)
    encoder, _ = fixed_encoder("tiny", seed=0)
    targets = encode_rows(columns, encoder, tok, max_tokens=32, dtype="float32")
    return pad_batch({**ids, **{k: v for k, v in targets.items() if k.endswith(("_target", "_present"))}},
                     tok.pad_token_id)


def test_objectives_return_named_parts_and_finetune_is_plain_ce(cnndm_path, selection_rows):
    from lsr.model.loading import tiny_model
    from lsr.training.objectives import make_objective, token_cross_entropy

    model, _ = tiny_model({"mwf_views": ["ea", "as", "ter"]}, seed=0)
    batch = _tiny_batch(cnndm_path, selection_rows)
    loss, parts = make_objective("mwf", gamma_ce=0.6, gamma_align=0.4)(model, batch)
    assert set(parts) == {"ce", "align_ea", "align_as", "align_ter"}
    align = parts["align_ea"] + parts["align_as"] + parts["align_ter"]
    assert loss.item() == pytest.approx((0.6 * parts["ce"] + 0.4 * align).item(), rel=1e-5)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "mwf" in n)

    model.eval()  # no dropout: the two CE computations must agree
    ft_loss, ft_parts = make_objective("finetune")(model, batch)
    assert set(ft_parts) == {"ce"}
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).logits
    assert ft_loss.item() == pytest.approx(token_cross_entropy(logits, batch["labels"]).item(), rel=1e-5)


def test_a_model_that_is_not_bart_is_refused_clearly(tmp_path):
    from transformers import T5Config

    from lsr.model.loading import load_student

    # A decoder-only causal LM is a student too (tests/kd/test_causal_student.py); another seq2seq family is not.
    T5Config(num_layers=1, d_model=8, num_heads=2, d_kv=4, d_ff=8).save_pretrained(tmp_path / "t5")
    with pytest.raises(InputError, match="not a BART checkpoint or a causal LM.*'t5'"):
        load_student(str(tmp_path / "t5"), {"mwf_views": []})
    with pytest.raises(InputError, match="not a BART checkpoint"):
        load_student(str(tmp_path / "missing"), {"mwf_views": []})


# ---- Ray Train (the run's flags and rows: tests/conftest.py) -----------------------------------------------------


def test_two_workers_train_checkpoint_and_resume_with_the_same_step_count(
    ray_local, tmp_path, cnndm_path, selection_rows, write_selection, train_args, train_history, train_direct
):
    from lsr.model.generate import load_summarizer
    from lsr.training.loop import STATE_FILE

    data = write_selection(selection_rows(cnndm_path, 24), tmp_path / "selected")
    output = tmp_path / "run"
    generation = '{"num_beams": 2, "min_new_tokens": 2, "max_new_tokens": 8}'
    common = [*train_args, "--data", str(data), "--output", str(output), "--validation", str(cnndm_path),
              "--validation-size", "2", "--val-generation", generation]
    assert main(["train", *common, "--max-steps", "4"]) == 0

    history = train_history(output)
    steps = [row["step"] for row in history if "loss" in row]
    assert steps == [1, 2, 3, 4]
    first = history[0]
    assert {"loss/ce", "loss/align_ea", "loss/align_as", "loss/align_ter", "lr", "gate/ter/1"} <= set(first)
    assert [row["step"] for row in history if "val_rouge1" in row] == [2, 4]
    assert (output / "gates.png").stat().st_size > 1000
    model, tokenizer = load_summarizer(str(output / "model"))
    assert model.config.model_type == "gated_bart" and model.config.mwf_views == ["ea", "as", "ter"]
    assert len(tokenizer) == model.config.vocab_size
    report = json.loads((output / "train_report.json").read_text())
    assert report["steps"] == 4 and report["examples"] == 24 and "val_rouge" in report["metrics"]
    targets = report["targets"]
    assert not targets["reused"] and targets["rows"] == 24 and set(targets["empty"]) == {"ea", "as", "ter"}
    stored = {p: p.read_bytes() for p in Path(targets["path"]).rglob("*") if p.is_file()}
    assert any(p.suffix == ".parquet" for p in stored)

    with pytest.raises(InputError, match="already exists.*--resume"):
        train_direct(common, 6, resume=False)

    assert main(["train", *common, "--max-steps", "6", "--resume"]) == 0
    resumed = train_history(output)
    assert [row["step"] for row in resumed if "loss" in row] == [1, 2, 3, 4, 5, 6]
    assert resumed[:len(history)] == history  # the first four steps are the restored ones, unchanged
    lr_at = {row["step"]: row["lr"] for row in resumed if "lr" in row}
    assert lr_at[5] == pytest.approx(noam_lr(5, 0.01, 4))  # the schedule continued, not restarted
    again = json.loads((output / "train_report.json").read_text())["targets"]
    assert again["reused"] and again["path"] == targets["path"]  # resume reuses the vectors, never recomputes them
    assert {p: p.read_bytes() for p in Path(targets["path"]).rglob("*") if p.is_file()} == stored  # never changed
    latest = json.loads((output / "train_report.json").read_text())["latest_checkpoint"]
    assert torch.load(Path(latest) / STATE_FILE, weights_only=False)["step"] == 6


def test_views_none_is_the_plain_fine_tuning_baseline_on_the_same_model_class():
    from lsr.core.config import resolve
    from lsr.model import GatedBartForConditionalGeneration
    from lsr.model.loading import load_student
    from lsr.model.views import parse_views
    from lsr.training.config import TrainConfig

    given = {"data": "d", "output": "o", "dataset": "cnndm"}
    settings = resolve(TrainConfig, {**given, "views": parse_views("none"), "max_steps": 1})
    assert settings.objective.kind == "finetune" and settings.views == []
    model, _ = load_student("tiny", settings.mwf_fields())
    assert isinstance(model, GatedBartForConditionalGeneration) and model.gate_values() == {}
    with pytest.raises(InputError, match="unknown view"):
        parse_views("ea,bogus")
    with pytest.raises(InputError, match="exactly one of --max-steps and --epochs"):
        resolve(TrainConfig, given)


@pytest.mark.usefixtures("ray_local")
def test_empty_training_set_and_missing_rationale_columns_are_clear_errors(
    tmp_path, cnndm_path, selection_rows, write_selection, train_args, train_direct
):
    rows = selection_rows(cnndm_path, 3)
    for row in rows:
        row["error"] = "rationale: no usable line"
    empty = write_selection(rows, tmp_path / "failed")
    args = [*train_args, "--data", str(empty), "--output", str(tmp_path / "o1"), "--max-steps", "1"]
    with pytest.raises(InputError, match="training set is empty"):
        train_direct(args[:-2], 1, resume=False)

    bare = tmp_path / "bare"
    bare.mkdir()
    pq.write_table(pa.Table.from_pylist([{"id": "a", "document": "d", "summary": "s"}]), bare / "part-0.parquet")
    args = [*train_args, "--data", str(bare), "--output", str(tmp_path / "o2")]
    with pytest.raises(InputError, match="missing column.*aspects"):
        train_direct(args, 1, resume=False)
