"""``lsr plan``: figures for a tiny input worked out by hand, throughput scaling, one-line errors."""

from __future__ import annotations

import json
import math

import pytest

from lsr.cli.main import main
from lsr.core.config import resolve
from lsr.mining.budget import CHAT_OVERHEAD_TOKENS, TokenBudget
from lsr.mining.planning import DocumentTokens, InputSample, PlanConfig, estimate, measure_document, plan, read_sample
from lsr.mining.prompts import SYSTEM, template_text


def _config(**given) -> PlanConfig:
    base = {"input": "-", "dataset": "cnndm", "mining_model": "m", "gpus_per_node": 8}
    return resolve(PlanConfig, {**base, **given})


def _write(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _words(n: int, word: str = "storm") -> str:
    return " ".join([word] * n)


def test_whole_input_figures_by_hand():
    # 1,000 documents; per document: call A prompt 1,000, call B prompt 1,200 (800 of them the shared prefix),
    # completions 100 + 50. Two nodes of 8 GPUs at tensor-parallel 8: 2 replicas, 16 GPUs.
    config = _config(nodes=2, tokens_per_second=100.0, prefill_tokens_per_second=1000.0)
    doc = DocumentTokens(prompt_a=1000, prompt_b_expected=1200, prompt_b_worst=2000, shared_prefix=800,
                         completion_a_expected=100, completion_b_expected=50, completion_a_worst=1024,
                         completion_b_worst=512, cut=False)
    sample = InputSample(rows=[("d", "s")], documents=1000, counted=True)
    p = estimate(config, sample, [doc], None)
    # prefilled: 1,000 x (1,000 + 1,200 - 800) = 1.4M tokens -> 1,400 s; completions 150,000 -> 1,500 s;
    # 2,900 replica-seconds over 2 replicas = 1,450 s; x 16 GPUs = 6.444 GPU-hours.
    assert p.expected.prompt_tokens == 2_200_000
    assert p.expected.prefill_tokens == 1_400_000
    assert p.expected.completion_tokens == 150_000
    assert p.expected.wall_seconds == pytest.approx(1450)
    assert p.expected.gpu_hours == pytest.approx(1450 * 16 / 3600)
    # worst case: prefilled 1,000 x (1,000 + 2,000 - 800) = 2.2M -> 2,200 s; completions 1,536,000 -> 15,360 s.
    assert p.worst.wall_seconds == pytest.approx((2200 + 15360) / 2)
    # without prefix caching call B's prefix is prefilled again
    uncached = estimate(_config(nodes=2, tokens_per_second=100.0, prefill_tokens_per_second=1000.0,
                                prefix_caching=False), sample, [doc], None)
    assert uncached.expected.prefill_tokens == 2_200_000


def test_completion_throughput_scales_the_decoding_part_of_wall_time():
    doc = DocumentTokens(1000, 1200, 2000, 800, 100, 50, 1024, 512, False)
    sample = InputSample(rows=[("d", "s")], documents=10_000, counted=True)
    slow = estimate(_config(tokens_per_second=500.0, prefill_tokens_per_second=20_000.0), sample, [doc], None)
    fast = estimate(_config(tokens_per_second=1000.0, prefill_tokens_per_second=20_000.0), sample, [doc], None)
    prefill_seconds = 10_000 * 1400 / 20_000
    assert slow.expected.wall_seconds - prefill_seconds == pytest.approx(2 * (fast.expected.wall_seconds
                                                                              - prefill_seconds))
    assert fast.expected.gpu_hours < slow.expected.gpu_hours
    # more nodes: more replicas, the same GPU-hours, proportionally less wall time
    wide = estimate(_config(nodes=4, tokens_per_second=500.0, prefill_tokens_per_second=20_000.0), sample, [doc],
                    None)
    assert wide.expected.wall_seconds == pytest.approx(slow.expected.wall_seconds / 4)
    assert wide.expected.gpu_hours == pytest.approx(slow.expected.gpu_hours)


def test_tokens_of_one_document_by_hand():
    config = _config(tokens_per_word=1.0)
    counter = TokenBudget(8192, 1024, 512, 1.0)
    short = measure_document(_words(10), "Storm hits Florida hard.", config, counter)
    long = measure_document(_words(20), "Storm hits Florida hard.", config, counter)
    # ten more document words are ten more tokens in both prompts and in the shared prefix
    assert long.prompt_a - short.prompt_a == 10
    assert long.prompt_b_expected - short.prompt_b_expected == 10
    assert long.shared_prefix - short.shared_prefix == 10
    # a 4-word gold summary: call A expects ceil(2.5 x 4) = 10 tokens, call B ceil(1.5 x 4) = 6; worst = the caps
    assert (short.completion_a_expected, short.completion_b_expected) == (10, 6)
    assert (short.completion_a_worst, short.completion_b_worst) == (1024, 512)
    # call B's prompt holds call A's completion in place of the gold summary
    assert short.prompt_b_worst - short.prompt_b_expected == 1024 - 10
    # the whole prompt: the template's words, the document block ("Article:" + 10 words), the summary, overhead
    template = len(template_text("cnndm", "rationale").split())
    assert short.prompt_a == template + 10 + 4 + CHAT_OVERHEAD_TOKENS
    assert short.shared_prefix == len(SYSTEM.split()) + 1 + 10


def test_the_command_counts_the_input_and_prints_every_assumption(tmp_path, capsys):
    rows = [{"id": "a", "article": _words(10), "highlights": "Storm hits Florida hard."},
            {"id": "b", "article": _words(20), "highlights": "Storm hits Florida hard."},
            {"id": "c", "article": _words(5), "highlights": ""}]
    path = _write(tmp_path / "docs.jsonl", rows)
    assert main(["plan", "--input", path, "--dataset", "cnndm", "--model", "llama-70b", "--gpus-per-node", "8",
                 "--tokens-per-word", "1", "--tokens-per-second", "100", "--prefill-tokens-per-second", "1000"]) == 0
    out = capsys.readouterr().out
    assert "2 documents (counted in 1 file(s); removed: 1 empty_summary)" in out
    for flag in ("--tokens-per-second 100.00", "--prefill-tokens-per-second 1,000.00",
                 "--rationale-length-factor 2.50", "--summaries-length-factor 1.50"):
        assert flag in out
    assert "given" in out and "expected" in out and "worst case" in out
    # the defaults name their source
    assert main(["plan", "--input", path, "--dataset", "cnndm", "--model", "m", "--gpus-per-node", "8"]) == 0
    out = capsys.readouterr().out
    assert "--tokens-per-second 2,572.80" in out and "LambdaLabsML/vllm-benchmark" in out
    assert "an assumption" in out


def test_sample_is_seeded_uniform_and_documents_override_the_count(tmp_path):
    rows = [{"document": f"doc {i}", "summary": f"sum {i}"} for i in range(100)]
    path = _write(tmp_path / "docs.jsonl", rows)
    first = read_sample(path, 10, seed=1)
    assert first.documents == 100 and len(first.rows) == 10
    assert first.rows == read_sample(path, 10, seed=1).rows
    assert {d for d, _ in first.rows} != {f"doc {i}" for i in range(10)}  # not just the head of the file
    given = read_sample(path, 10, documents=287_113)
    assert given.documents == 287_113 and not given.counted


def test_a_local_model_folder_counts_with_its_tokenizer(tmp_path):
    from lsr.model.loading import tiny_tokenizer

    folder = tmp_path / "model"
    tiny_tokenizer().save_pretrained(folder)
    path = _write(tmp_path / "docs.jsonl", [{"document": _words(30, "Florida"), "summary": "Storm hits Florida."}])
    config = resolve(PlanConfig, {"input": path, "dataset": "xsum", "mining_model": str(folder), "gpus_per_node": 8})
    p = plan(config)
    assert p.tokenizer == str(folder)
    words = plan(resolve(PlanConfig, {"input": path, "dataset": "xsum", "mining_model": "m", "gpus_per_node": 8}))
    assert p.per_document["prompt_a"] != words.per_document["prompt_a"]
    assert math.isfinite(p.expected.gpu_hours)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--input", "{tmp}/missing.jsonl"], "no such file or directory"),
        (["--input", "{tmp}/bad.jsonl"], "missing column 'summary'"),
        (["--input", "{tmp}/ok.jsonl", "--tensor-parallel-size", "16"], "needs more GPUs than a node has"),
        (["--input", "{tmp}/ok.jsonl", "--tensor-parallel-size", "3"], "pass --tokens-per-second"),
        (["--input", "{tmp}/ok.jsonl", "--tokens-per-second", "0"], "--tokens-per-second"),
        (["--input", "{tmp}/empty.jsonl"], "no usable rows"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    _write(tmp_path / "bad.jsonl", [{"document": "x"}])
    _write(tmp_path / "ok.jsonl", [{"document": "x y", "summary": "x"}])
    _write(tmp_path / "empty.jsonl", [{"document": "", "summary": "x"}])
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert main(["plan", "--dataset", "cnndm", "--model", "m", "--gpus-per-node", "8", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_reads_the_sample_from_s3(s3):
    """The plan reads an s3:// input through the same storage helper as the stages (moto on loopback)."""
    s3.create_bucket(Bucket="corpus")
    body = "".join(json.dumps({"document": f"doc {i}", "summary": "s"}) + "\n" for i in range(30))
    s3.put_object(Bucket="corpus", Key="xsum/train.jsonl", Body=body.encode())
    sample = read_sample("s3://corpus/xsum/train.jsonl", 5, seed=0)
    assert sample.documents == 30 and len(sample.rows) == 5 and sample.files == 1
