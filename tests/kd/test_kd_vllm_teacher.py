"""The logit-KD teacher pass through ``ray.data.llm`` + a real vLLM engine on the CPU (prompt log-probs) agrees
with the transformers teacher pass on the same weights: the offline and online teachers must agree, or the
offline one is wrong.

The teacher is the tiny random Llama (shipped tokenizer, as the ``tiny-causal`` student's), the rows are real
CNN/DM documents; both passes tokenise the rows as the causal student trains on them and keep the top-k per
summary token. Same labels row by row; the same top-k ids at nearly every summary position (a random model's
distribution is nearly flat, so the k-th and k+1-th log-probs can swap on float rounding); the same log-probs to
float32 tolerance wherever both kept an id.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsr.cli.main import main
from lsr.model.topk_columns import IDS, LABELS, LOGPROBS

pytestmark = pytest.mark.vllm

TOP_K = 5
ROWS = 6


@pytest.fixture(scope="module")
def rows(cnndm_path, tmp_path_factory):
    data = tmp_path_factory.mktemp("kd-rows")
    records = [json.loads(line) for line in cnndm_path.read_text().splitlines()[:ROWS]]
    table = pa.table({"id": [r["id"] for r in records], "document": [r["document"] for r in records],
                      "summary": [r["summary"] for r in records]})
    pq.write_table(table, data / "rows.parquet")
    return data


def _teacher_pass(engine_flags: list[str], data, teacher, out) -> dict[str, dict]:
    argv = ["teacher", "--data", str(data), "--output", str(out), "--dataset", "cnndm", "--teacher", str(teacher),
            "--student", "tiny-causal", "--top-k", str(TOP_K), "--source-max-tokens", "256",
            "--target-max-tokens", "64", *engine_flags]
    assert main(argv) == 0
    return {row["id"]: row for row in pq.read_table(out / "kept").to_pylist()}


def test_the_vllm_teacher_pass_matches_the_transformers_pass_on_the_same_weights(ray_local, rows, tiny_llama,
                                                                                tmp_path):
    online = _teacher_pass([], rows, tiny_llama, tmp_path / "transformers")
    offline = _teacher_pass(["--engine", "vllm", "--device", "cpu", "--dtype", "float32", "--kv-cache-gib", "0.5",
                             "--max-model-len", "2048"], rows, tiny_llama, tmp_path / "vllm")
    assert set(online) == set(offline) and len(online) == ROWS
    positions = same_sets = compared = 0
    worst = 0.0
    for row_id, ours in online.items():
        theirs = offline[row_id]
        assert ours[LABELS] == theirs[LABELS]  # both tokenised as the student trains
        assert len(ours[IDS]) == len(theirs[IDS]) == TOP_K * sum(label != -100 for label in ours[LABELS][1:])
        for start in range(0, len(ours[IDS]), TOP_K):
            a = dict(zip(ours[IDS][start:start + TOP_K], ours[LOGPROBS][start:start + TOP_K], strict=True))
            b = dict(zip(theirs[IDS][start:start + TOP_K], theirs[LOGPROBS][start:start + TOP_K], strict=True))
            positions += 1
            same_sets += set(a) == set(b)
            for token in set(a) & set(b):
                compared += 1
                worst = max(worst, abs(a[token] - b[token]))
    assert same_sets >= 0.98 * positions, f"top-{TOP_K} ids differ at {positions - same_sets} of {positions}"
    assert compared >= 0.95 * positions * TOP_K and worst < 1e-4, f"largest log-prob difference {worst}"
