"""Causal (decoder-only) students and teachers for logit KD, decoder-only generation, and the vLLM teacher pass's
structure (built without a GPU) and its reading of vLLM's prompt log-probs."""

from __future__ import annotations

import pytest
import torch

from lsr.model.batching import pad_batch
from lsr.model.causal_prompt import causal_rows
from lsr.model.generate import generate_causal

DOCS = ["The council approved the new bridge on Tuesday after a long debate.", "Rain fell."]
SUMMARIES = ["Council approves bridge.", "It rained in the town all day long."]


def tiny_gpt2(seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    from lsr.model.loading import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_embd=32, n_head=2, n_positions=256,
                        bos_token_id=0, eos_token_id=2, pad_token_id=1)
    return GPT2LMHeadModel(config), tokenizer


def _batch(tokenizer, source=32, target=12):
    rows = causal_rows(tokenizer, DOCS, SUMMARIES, source_max_tokens=source, target_max_tokens=target)
    return rows, pad_batch({"input_ids": rows["input_ids"], "labels": rows["labels"]}, tokenizer.pad_token_id)


def test_causal_rows_put_the_loss_on_the_summary_only():
    _, tokenizer = tiny_gpt2(0)
    rows, _ = _batch(tokenizer, source=8, target=4)
    for ids, labels, (prompt,) in zip(rows["input_ids"], rows["labels"], rows["prompt_lengths"], strict=True):
        assert labels[:prompt] == [-100] * prompt and -100 not in labels[prompt:]
        assert labels[prompt:] == ids[prompt:] and ids[-1] == tokenizer.eos_token_id and len(ids) - prompt <= 4
    from lsr.model.causal_prompt import INSTRUCTION, SUMMARY_CUE

    pieces = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in (INSTRUCTION, DOCS[0], SUMMARY_CUE)]
    assert rows["prompt_lengths"][0] == [1 + pieces[0] + min(pieces[1], 8) + pieces[2]]  # bos, document cut at 8
    assert rows["input_ids"][0][0] == tokenizer.bos_token_id


def test_online_kd_on_a_causal_student_lowers_the_kd_term_and_is_zero_for_the_teacher(tmp_path):
    from lsr.training.objectives import make_objective

    teacher, tokenizer = tiny_gpt2(1)
    teacher.lm_head.weight.data.mul_(8.0)  # a confident teacher
    teacher.save_pretrained(tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    _, batch = _batch(tokenizer)

    objective = make_objective("logit-kd", teacher=str(tmp_path / "teacher"), alpha=0.0)
    objective.check_tokenizer(tokenizer)
    same, _ = tiny_gpt2(1)
    same.lm_head.weight.data.mul_(8.0)
    objective.setup(same, torch.device("cpu"))
    same.eval()
    _, parts = objective(same, batch)
    assert parts["kd"].item() == pytest.approx(0.0, abs=1e-5)

    student, _ = tiny_gpt2(2)
    objective.setup(student, torch.device("cpu"))
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    seen = []
    for _ in range(8):
        loss, parts = objective(student, batch)
        seen.append(parts["kd"].item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert seen[-1] < 0.7 * seen[0], seen
    assert all(p.grad is None for p in objective._teacher_model.parameters())

    from lsr.model.loading import tiny_model

    bart, _ = tiny_model({"mwf_views": []})
    with pytest.raises(ValueError, match="not of the same family"):
        objective.setup(bart, torch.device("cpu"))


def test_offline_topk_from_vllm_prompt_logprobs_lines_up_with_the_causal_student():
    from lsr.kd.vllm_teacher import topk_from_prompt_logprobs
    from lsr.model.topk_columns import TEACHER_COLUMNS, pad_teacher_column
    from lsr.training.objectives import make_objective

    teacher, tokenizer = tiny_gpt2(1)
    student, _ = tiny_gpt2(2)
    teacher.eval()
    student.eval()  # no dropout: the hand computation and the objective must see the same logits
    rows, batch = _batch(tokenizer)
    k, T = 4, 2.0
    columns = {name: [] for name in TEACHER_COLUMNS}
    expected = []
    for ids, labels in zip(rows["input_ids"], rows["labels"], strict=True):
        with torch.no_grad():
            logprobs = torch.log_softmax(teacher(torch.tensor([ids])).logits[0], -1)
        # vLLM's layout: entry t is the distribution of token t; None first; the actual token added beside the top k
        entries = [None] + [
            {**{int(i): {"logprob": float(v)} for i, v in zip(*reversed(logprobs[t].topk(k)), strict=True)},
             ids[t + 1]: {"logprob": float(logprobs[t, ids[t + 1]])}}
            for t in range(len(ids) - 1)
        ]
        row = topk_from_prompt_logprobs(entries, labels, k)
        for name in TEACHER_COLUMNS:
            columns[name].append(row[name])
        with torch.no_grad():
            student_logits = student(torch.tensor([ids])).logits[0]
        for t in range(len(ids) - 1):
            if labels[t + 1] != -100:  # logits at t predict token t + 1, a summary token
                top = logprobs[t].topk(k)
                q = torch.softmax(top.values / T, -1)
                log_p = torch.log_softmax(student_logits[t] / T, -1)[top.indices]
                expected.append(float((q * (q.log() - log_p)).sum()))
        assert len(row["teacher_topk_ids"]) == k * sum(label != -100 for label in labels)
    batch.update({name: pad_teacher_column(name, values) for name, values in columns.items()})
    _, parts = make_objective("logit-kd", temperature=T)(student, batch)
    assert parts["kd"].item() == pytest.approx(sum(expected) / len(expected), rel=1e-4)


def test_decoder_only_generation_returns_the_new_tokens_and_batches_like_single_prompts():
    model, tokenizer = tiny_gpt2(3)
    model.eval()
    kwargs = {"num_beams": 1, "do_sample": False, "max_new_tokens": 6, "min_new_tokens": 6}
    both = generate_causal(model, tokenizer, DOCS, source_max_tokens=32, generation_kwargs=kwargs)
    alone = [generate_causal(model, tokenizer, [d], source_max_tokens=32, generation_kwargs=kwargs)[0] for d in DOCS]
    assert both == alone  # left padding: each row continues its own prompt
    assert all(0 < len(tokenizer(s, add_special_tokens=False)["input_ids"]) <= 8 for s in both)
    assert not any("Summary:" in s or "Article:" in s for s in both)
