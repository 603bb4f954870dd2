"""Logit KD: the KL against a hand computation, online and offline teachers through Ray Train on tiny
models, the offline pass's rows, the tokenizer check, sequence-level KD's target and shrink-and-fine-tune's map."""

from __future__ import annotations

import json
import math

import pyarrow.parquet as pq
import pytest
import torch

from lsr.core.errors import InputError


@pytest.fixture(scope="module")
def kd_args(train_args) -> list[str]:
    """The training flags (tests/conftest.py) for a plain student distilled by logit KD on one worker."""
    return [*train_args, "--views", "none", "--objective", "logit-kd", "--workers", "1", "--alpha", "0.2"]


# ---- the loss, pure -------------------------------------------------------------------------------------------


def test_kl_matches_a_hand_computation_and_ignores_masked_tokens():
    from lsr.kd.kd_loss import kd_kl_full, kd_loss

    student = torch.tensor([[[1.0, 0.0, -1.0], [9.0, -9.0, 0.0]]])
    teacher = torch.tensor([[[0.0, 2.0, 0.0], [-5.0, 5.0, 1.0]]])
    mask = torch.tensor([[True, False]])  # the second position is padding or prompt: it must not count
    T = 2.0

    def softmax(values):
        exps = [math.exp(v / T) for v in values]
        return [e / sum(exps) for e in exps]

    p, q = softmax([1.0, 0.0, -1.0]), softmax([0.0, 2.0, 0.0])
    by_hand = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    assert kd_kl_full(student, teacher, mask, T).item() == pytest.approx(by_hand, rel=1e-5)
    assert kd_kl_full(teacher, teacher, torch.ones(1, 2, dtype=torch.bool), T).item() == pytest.approx(0.0, abs=1e-6)
    ce, kl = torch.tensor(3.0), torch.tensor(0.5)
    assert kd_loss(ce, kl, alpha=0.2, temperature=T).item() == pytest.approx(0.2 * 3.0 + 0.8 * 4 * 0.5)


def test_topk_kl_renormalises_the_teacher_and_equals_the_full_kl_at_full_k():
    from lsr.kd.kd_loss import kd_kl_full, kd_kl_topk

    torch.manual_seed(0)
    student, teacher = torch.randn(2, 3, 7), torch.randn(2, 3, 7)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    logprobs = torch.log_softmax(teacher, -1)
    full = logprobs.topk(7, -1)
    assert kd_kl_topk(student, full.indices, full.values, mask, 2.0).item() == pytest.approx(
        kd_kl_full(student, teacher, mask, 2.0).item(), rel=1e-5
    )
    assert kd_kl_topk(teacher, full.indices, full.values, mask, 2.0).item() == pytest.approx(0.0, abs=1e-6)

    top = logprobs.topk(2, -1)  # by hand at one position: q over the 2 kept tokens, p over the full vocabulary
    q = torch.softmax(top.values[0, 0] / 2.0, -1)
    log_p = torch.log_softmax(student[0, 0] / 2.0, -1)[top.indices[0, 0]]
    by_hand = float((q * (q.log() - log_p)).sum())
    one = torch.tensor([[True, False, False], [False, False, False]])
    assert kd_kl_topk(student, top.indices, top.values, one, 2.0).item() == pytest.approx(by_hand, rel=1e-5)
    assert kd_kl_topk(student, top.indices, top.values, mask, 2.0).item() > 0


def test_offline_columns_must_match_the_runs_labels():
    from lsr.model.topk_columns import pad_teacher_column, topk_from_batch

    labels = [[0, 5, 2], [0, 2]]
    batch = {
        "labels": pad_teacher_column("teacher_labels", labels),
        "teacher_labels": pad_teacher_column("teacher_labels", labels),
        "teacher_topk_ids": pad_teacher_column("teacher_topk_ids", [[1, 2] * 3, [3, 4] * 2]),
        "teacher_topk_logprobs": pad_teacher_column("teacher_topk_logprobs", [[-0.1, -2.0] * 3, [-0.5, -1.0] * 2]),
    }
    mask = batch["labels"] != -100
    ids, logprobs = topk_from_batch(batch, mask)  # the 5 real tokens, in the order of logits[mask]
    assert ids.shape == logprobs.shape == (5, 2) and ids[3:].tolist() == [[3, 4], [3, 4]]
    assert logprobs[:, 0].tolist() == pytest.approx([-0.1, -0.1, -0.1, -0.5, -0.5])
    batch["labels"] = pad_teacher_column("teacher_labels", [[0, 6, 2], [0, 2]])
    with pytest.raises(ValueError, match="scored other summary tokens"):
        topk_from_batch(batch, mask)


def test_sequence_level_kd_trains_on_the_llm_summary():
    from lsr.core.config import resolve
    from lsr.model.batching import tokenize_rows
    from lsr.model.loading import tiny_tokenizer
    from lsr.training.config import TrainConfig

    tok = tiny_tokenizer()
    rows = {"document": ["a document"], "summary": ["gold"], "total_summary": ["the LLM's summary"]}
    ids = tokenize_rows(rows, tok, source_max_tokens=16, target_max_tokens=16, summary_column="total_summary")
    assert ids["labels"] == [tok("the LLM's summary")["input_ids"]]
    config = resolve(TrainConfig, {"data": "d", "output": "o", "dataset": "cnndm", "max_steps": 1,
                                   "summary_column": "total_summary"})
    assert config.summary_column == "total_summary"
    with pytest.raises(InputError, match="summary_column"):
        resolve(TrainConfig, {"data": "d", "output": "o", "dataset": "cnndm", "max_steps": 1, "summary_column": "x"})


# ---- teachers through Ray Train ---------------------------------------------------------------------------------


def _kd_terms(history: list[dict]) -> list[float]:
    return [row["loss/kd"] for row in history if "loss/kd" in row]


def test_tokenizer_mismatch_is_refused_before_ray(
    tmp_path, cnndm_path, save_tiny_bart, selection_rows, write_selection, kd_args, train_direct
):
    other = save_tiny_bart(tmp_path / "other", extra_token=True)
    data = write_selection(selection_rows(cnndm_path, 4), tmp_path / "selected")
    args = [*kd_args, "--teacher", str(other), "--data", str(data), "--output", str(tmp_path / "run")]
    with pytest.raises(InputError, match="do not share a tokenizer"):
        train_direct(args, 2, resume=False)
    from lsr.cli.main import main

    assert main(["teacher", "--data", str(data), "--output", str(tmp_path / "pass"), "--dataset", "cnndm",
                 "--teacher", str(other)]) == 2
    assert not (tmp_path / "pass").exists()
    with pytest.raises(InputError, match="not a checkpoint folder"):
        train_direct([*kd_args, "--teacher", str(tmp_path / "missing"), "--data", str(data), "--output", "o"], 2,
                      resume=False)


def test_online_teacher_trains_the_student_and_lowers_the_kd_term(
    ray_local, tmp_path, cnndm_path, teacher, selection_rows, write_selection, kd_args, train_history
):
    from lsr.cli.main import main

    data = write_selection(selection_rows(cnndm_path, 24), tmp_path / "selected")
    output = tmp_path / "run"
    assert main(["train", *kd_args, "--teacher", str(teacher), "--data", str(data), "--output", str(output),
                 "--max-steps", "6"]) == 0
    kd = _kd_terms(train_history(output))
    assert len(kd) == 6 and kd[-1] < 0.8 * kd[0], kd
    report = json.loads((output / "train_report.json").read_text())
    assert report["config"]["objective"] == {"kind": "logit-kd", "alpha": 0.2, "temperature": 2.0,
                                             "teacher": str(teacher)}


def test_offline_pass_writes_one_row_per_example_and_trains_the_student(
    ray_local, tmp_path, cnndm_path, teacher, selection_rows, write_selection, kd_args, train_history
):
    from lsr.cli.main import main
    from lsr.model.loading import tiny_tokenizer

    rows = selection_rows(cnndm_path, 24)
    data = write_selection(rows, tmp_path / "selected")
    scored = tmp_path / "scored"
    k = 5
    assert main(["teacher", "--data", str(data), "--output", str(scored), "--dataset", "cnndm", "--teacher",
                 str(teacher), "--top-k", str(k), "--target-max-tokens", "48", "--source-max-tokens", "96",
                 "--batch-size", "8"]) == 0
    table = pq.read_table(scored / "kept").to_pylist()
    assert sorted(r["id"] for r in table) == sorted(r["id"] for r in rows)  # exactly one row per example
    tok = tiny_tokenizer()
    for row in table:
        n = len(row["teacher_labels"])
        assert row["teacher_labels"] == tok(row["summary"], truncation=True, max_length=48)["input_ids"]
        assert len(row["teacher_topk_ids"]) == len(row["teacher_topk_logprobs"]) == n * k
        first = row["teacher_topk_logprobs"][:k]
        assert first == sorted(first, reverse=True) and first[0] <= 0
    report = json.loads((scored / "teacher_report.json").read_text())
    assert report["examples"] == 24 and report["top_k"] == k and report["bytes_per_example_parquet"] > 0

    output = tmp_path / "run"
    assert main(["train", *kd_args, "--data", str(scored), "--output", str(output), "--max-steps", "6"]) == 0
    # the top-k KL also asks the student to move its mass onto the teacher's top k: slower
    kd = _kd_terms(train_history(output))
    assert len(kd) == 6 and max(kd[-2:]) < 0.95 * kd[0], kd



# ---- shrink-and-fine-tune ---------------------------------------------------------------------------------------


def test_layer_map_spaces_layers_like_distilbart():
    from lsr.kd.shrink import layer_map

    assert layer_map(12, 6) == [0, 2, 4, 7, 9, 11]
    assert layer_map(12, 3) == [0, 6, 11] and layer_map(12, 1) == [0] and layer_map(4, 4) == [0, 1, 2, 3]
    with pytest.raises(InputError, match="cannot be copied"):
        layer_map(6, 7)


def test_shrink_copies_the_mapped_layers(tmp_path, capsys, save_tiny_bart):
    from transformers import BartForConditionalGeneration

    from lsr.cli.main import main

    big = save_tiny_bart(tmp_path / "big", layers=4)
    assert main(["shrink", "--teacher", str(big), "--output", str(tmp_path / "small"), "--decoder-layers", "2"]) == 0
    assert "decoder: student layer i <- teacher layer [0, 3]" in capsys.readouterr().out
    teacher = BartForConditionalGeneration.from_pretrained(big).state_dict()
    student_model = BartForConditionalGeneration.from_pretrained(tmp_path / "small")
    student = student_model.state_dict()
    assert student_model.config.shrink_map == {"teacher": str(big), "encoder": [0, 1, 2, 3], "decoder": [0, 3]}
    assert student_model.config.decoder_layers == 2 and student_model.config.encoder_layers == 4
    for student_layer, teacher_layer in enumerate([0, 3]):
        prefix = "model.decoder.layers."
        names = [n for n in student if n.startswith(f"{prefix}{student_layer}.")]
        assert names
        for name in names:
            source = name.replace(f"{prefix}{student_layer}.", f"{prefix}{teacher_layer}.", 1)
            assert torch.equal(student[name], teacher[source]), name
    assert torch.equal(student["model.shared.weight"], teacher["model.shared.weight"])
    assert not torch.equal(student["model.decoder.layers.1.fc1.weight"], teacher["model.decoder.layers.1.fc1.weight"])


def test_a_teacher_engine_refuses_the_other_engines_options():
    from lsr.core.config import resolve
    from lsr.kd.teacher_pass import TeacherPassConfig

    base = {"data": "d", "output": "o", "dataset": "cnndm", "teacher": "t"}
    assert resolve(TeacherPassConfig, {**base, "engine": "vllm", "vllm": {"device": "cpu"}}).vllm.device == "cpu"
    with pytest.raises(InputError, match="--device: options of --engine vllm, not of --engine transformers"):
        resolve(TeacherPassConfig, {**base, "vllm": {"device": "cpu"}})
    with pytest.raises(InputError, match="--gpu is an option of --engine transformers"):
        resolve(TeacherPassConfig, {**base, "engine": "vllm", "use_gpu": True})
