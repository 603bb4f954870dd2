"""Decoder-only (causal LM) students through ``lsr train``: fine-tuning and logit KD (online and offline
teachers) through Ray Train on CPU, then ``lsr evaluate`` and the served model generating with the trained student;
MWF and AS-ES refuse a causal student, and teachers of the other family or another tokenizer are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from lsr.cli.main import main
from lsr.core.errors import InputError

GENERATION = {"num_beams": 2, "min_new_tokens": 2, "max_new_tokens": 8}


def save_causal_teacher(folder: Path, *, seed: int = 1, extra_token: bool = False) -> Path:
    """A tiny causal teacher of ``tiny-causal``'s shape with a strong fixed token preference to learn (the causal
    twin of the BART teacher's ``final_logits_bias``): its last layer norm outputs one large vector everywhere."""
    from lsr.model.loading import tiny_causal_model

    model, tokenizer = tiny_causal_model(seed=seed)
    if extra_token:
        tokenizer.add_tokens(["<not-in-the-student>"])
    with torch.no_grad():
        ln_f = model.transformer.ln_f
        ln_f.weight.zero_()
        ln_f.bias.copy_(25.0 * torch.randn_like(ln_f.bias))  # logits = wte @ bias: std ~ 4 over the vocabulary
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def causal_args(train_args) -> list[str]:
    """The training flags (tests/conftest.py) with the tiny causal student, no rationale views."""
    at = train_args.index("--model")
    return [*train_args[:at], "--model", "tiny-causal", *train_args[at + 2:], "--views", "none"]


@pytest.fixture(scope="module")
def kd_args(causal_args) -> list[str]:
    return [*causal_args, "--objective", "logit-kd", "--workers", "1", "--alpha", "0.2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory, cnndm_path, selection_rows, write_selection) -> Path:
    return write_selection(selection_rows(cnndm_path, 24), tmp_path_factory.mktemp("causal") / "selected")


@pytest.fixture(scope="module")
def causal_teacher(tmp_path_factory) -> Path:
    return save_causal_teacher(tmp_path_factory.mktemp("teacher") / "tiny-gpt2")


def _terms(history: list[dict], name: str) -> list[float]:
    return [row[f"loss/{name}"] for row in history if f"loss/{name}" in row]


# ---- refused before Ray --------------------------------------------------------------------------------------


def test_mwf_and_as_es_refuse_a_causal_student_and_views_are_refused_for_it(tmp_path, data, causal_args, train_direct):
    common = [*causal_args, "--data", str(data), "--output", str(tmp_path / "run")]
    mwf = [a for a in common if a not in ("--views", "none")]  # views on: the default objective is mwf
    with pytest.raises(InputError, match="--objective mwf trains BART-family .*'tiny-causal' is a causal LM"):
        train_direct([*mwf, "--objective", "mwf"], 1, resume=False)
    with pytest.raises(InputError, match="--objective as-es trains BART-family"):
        train_direct([*common, "--objective", "as-es"], 1, resume=False)
    with pytest.raises(InputError, match="causal LM, which has no rationale modules: pass --views none"):
        train_direct([*mwf, "--objective", "finetune"], 1, resume=False)
    with pytest.raises(InputError, match="holds 2048 positions.*lower --source-max-tokens"):
        train_direct([*common, "--source-max-tokens", "2040"], 1, resume=False)
    assert main(["train", *mwf, "--objective", "mwf", "--max-steps", "1"]) == 2  # the CLI: one line, exit 2
    with pytest.raises(InputError, match="causal LM: alignment targets are encoded by a BART"):
        from lsr.cli.main import build_parser

        args = build_parser().parse_args(["targets", "--data", str(data), "--model", "tiny-causal"])
        args._run(args)
    assert not (tmp_path / "run").exists()


def test_a_teacher_of_the_other_family_or_another_tokenizer_is_refused(
    tmp_path, data, causal_teacher, save_tiny_bart, kd_args, train_direct
):
    bart = save_tiny_bart(tmp_path / "bart")
    common = [*kd_args, "--data", str(data), "--output", str(tmp_path / "run")]
    with pytest.raises(InputError, match="is a seq2seq model and the student a causal one"):
        train_direct([*common, "--teacher", str(bart)], 1, resume=False)
    other = save_causal_teacher(tmp_path / "other", extra_token=True)
    with pytest.raises(InputError, match="do not share a tokenizer"):
        train_direct([*common, "--teacher", str(other)], 1, resume=False)
    # The offline pass refuses a teacher of the other family for the student it scores for.
    assert main(["teacher", "--data", str(data), "--output", str(tmp_path / "pass"), "--dataset", "cnndm",
                 "--teacher", str(bart), "--student", "tiny-causal"]) == 2
    assert main(["teacher", "--data", str(data), "--output", str(tmp_path / "pass"), "--dataset", "cnndm",
                 "--teacher", str(causal_teacher)]) == 2  # the default student, tiny, is seq2seq
    assert not (tmp_path / "pass").exists()


# ---- trained through Ray Train ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finetuned(ray_local, tmp_path_factory, data, cnndm_path, causal_args) -> Path:
    """A causal student fine-tuned 6 steps on two workers (DDP), validated at its checkpoints."""
    output = tmp_path_factory.mktemp("finetune") / "run"
    assert main(["train", *causal_args, "--data", str(data), "--output", str(output), "--max-steps", "6",
                 "--checkpoint-every", "3", "--validation", str(cnndm_path), "--validation-size", "2",
                 "--val-generation", json.dumps(GENERATION)]) == 0
    return output


def test_a_causal_student_fine_tunes_through_ray_train(finetuned, train_history):
    from transformers import GPT2LMHeadModel

    from lsr.model.generate import load_summarizer

    ce = _terms(train_history(finetuned), "ce")
    assert len(ce) == 6 and max(ce[-2:]) < 0.95 * ce[0], ce  # from ~ln(4096): a few steps move it slowly
    assert [row["step"] for row in train_history(finetuned) if "val_rouge1" in row] == [3, 6]
    report = json.loads((finetuned / "train_report.json").read_text())
    assert report["student_family"] == "causal" and report["config"]["objective"] == {"kind": "finetune"}
    model, tokenizer = load_summarizer(str(finetuned / "model"))  # the class the exported config records
    assert isinstance(model, GPT2LMHeadModel) and not model.config.is_encoder_decoder
    assert len(tokenizer) == model.config.vocab_size
    # What a worker restores on --resume or after a failure: the causal class again, at the step it stopped.
    import ray.train

    from lsr.training.checkpoints import load_checkpoint

    restored = load_checkpoint(ray.train.Checkpoint.from_directory(report["latest_checkpoint"]))
    assert isinstance(restored.model, GPT2LMHeadModel) and restored.progress.step == 6


def test_evaluate_and_the_served_model_generate_with_the_trained_causal_student(finetuned, tmp_path, xsum_path):
    from lsr.model.generate import generate_causal, load_summarizer
    from lsr.serving.config import ServeConfig
    from lsr.serving.summarizer import Document, ServedModel, generation_key

    output = tmp_path / "eval"
    assert main(["evaluate", "--model", f"Causal={finetuned / 'model'}", "--data", str(xsum_path), "--output",
                 str(output), "--dataset", "xsum", "--limit", "3", "--num-beams", "2", "--min-new-tokens", "3",
                 "--max-new-tokens", "8", "--source-max-tokens", "128", "--no-bertscore", "--no-similarity",
                 "--latency-batches", "1"]) == 0
    results = json.loads((output / "results.json").read_text())
    (row,) = results["models"]
    assert row["name"] == "Causal" and row["examples"] == 3 and row["latency_b1_p50"] > 0
    model, tokenizer = load_summarizer(str(finetuned / "model"))
    assert row["parameters"] == sum(p.numel() for p in model.parameters())
    assert "| Causal |" in (output / "results.md").read_text()
    predicted = pq.read_table(row["predictions"]).to_pylist()
    assert len(predicted) == 3 and all(r["prediction"] for r in predicted)
    kwargs = results["generation"]  # the xsum preset with the flags' overrides
    assert kwargs["num_beams"] == 2 and kwargs["max_new_tokens"] == 8
    for r in predicted:  # the decoder-only generation: the prompt in, the new tokens out
        assert r["prediction"] == generate_causal(model, tokenizer, [r["document"]], source_max_tokens=128,
                                                  generation_kwargs=kwargs)[0]
        assert "Summary:" not in r["prediction"]

    served = ServedModel(ServeConfig.model_validate({"model": str(finetuned / "model"), "source_max_tokens": 128,
                                                     "generation": GENERATION}))
    assert served.dataset == "cnndm"  # from the run's train_report.json
    settings = generation_key(served.generation_for({}))
    (answer,) = served.summarize([Document(predicted[0]["document"], settings)])
    assert answer.summary == generate_causal(model, tokenizer, [predicted[0]["document"]], source_max_tokens=128,
                                             generation_kwargs=dict(settings))[0]
    info = served.info()
    assert info["family"] == "causal" and info["decoder_layers"] == 2 and info["gates"] == {}


def test_online_causal_teacher_lowers_the_kd_term(ray_local, tmp_path, data, causal_teacher, kd_args, train_history):
    output = tmp_path / "run"
    assert main(["train", *kd_args, "--teacher", str(causal_teacher), "--data", str(data), "--output", str(output),
                 "--max-steps", "6"]) == 0
    kd = _terms(train_history(output), "kd")
    assert len(kd) == 6 and kd[-1] < 0.8 * kd[0], kd
    assert json.loads((output / "train_report.json").read_text())["student_family"] == "causal"


def test_offline_causal_teacher_pass_and_student(ray_local, tmp_path, data, causal_teacher, kd_args, train_history):
    from lsr.model.causal_prompt import causal_rows
    from lsr.model.loading import tiny_tokenizer

    scored, k = tmp_path / "scored", 5
    assert main(["teacher", "--data", str(data), "--output", str(scored), "--dataset", "cnndm", "--teacher",
                 str(causal_teacher), "--student", "tiny-causal", "--top-k", str(k), "--target-max-tokens", "48",
                 "--source-max-tokens", "96", "--batch-size", "8"]) == 0
    table = pq.read_table(scored / "kept").to_pylist()
    assert len(table) == 24 and len({r["id"] for r in table}) == 24  # exactly one row per example
    tok = tiny_tokenizer()
    for row in table:
        expected = causal_rows(tok, [row["document"]], [row["summary"]], source_max_tokens=96, target_max_tokens=48)
        assert row["teacher_labels"] == expected["labels"][0]  # the causal layout: -100 on the prompt
        summary_tokens = sum(label != -100 for label in row["teacher_labels"])
        assert len(row["teacher_topk_ids"]) == len(row["teacher_topk_logprobs"]) == summary_tokens * k
        first = row["teacher_topk_logprobs"][:k]
        assert first == sorted(first, reverse=True) and first[0] <= 0

    output = tmp_path / "run"
    assert main(["train", *kd_args, "--data", str(scored), "--output", str(output), "--max-steps", "6"]) == 0
    kd = _terms(train_history(output), "kd")
    assert len(kd) == 6 and max(kd[-2:]) < 0.95 * kd[0], kd
