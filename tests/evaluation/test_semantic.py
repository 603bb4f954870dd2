"""The logit-KD paper's measures: similarity with the offline MiniLM, entailment with an NLI model given by path,
parameter count and seconds per summary; and the results table that shows them after Table 2's columns."""

from __future__ import annotations

import pytest

from lsr.core.errors import InputError
from lsr.evaluation.metrics.entailment import entailment, resolve_nli_model
from lsr.evaluation.metrics.latency import median, seconds_per_summary
from lsr.evaluation.metrics.parameters import parameter_count
from lsr.evaluation.metrics.similarity import similarity, similarity_model_path
from lsr.evaluation.results import ModelResult, markdown_table

SAME = "Police arrested two men in Leeds on Friday night."
PARAPHRASE = "Two men were arrested by police in Leeds late on Friday."
UNRELATED = "The orchestra will tour Japan next spring with a new conductor."


def test_similarity_is_the_cosine_of_minilm_embeddings():
    path = similarity_model_path()
    scores = similarity([SAME, PARAPHRASE, UNRELATED], [SAME, SAME, SAME], path)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)  # a text and itself
    assert scores[0] > scores[1] > scores[2]  # a paraphrase is closer than an unrelated sentence
    assert all(-1.0 <= s <= 1.0 + 1e-6 for s in scores)
    assert similarity([], [], path) == []


@pytest.fixture(scope="module")
def nli_path(tmp_path_factory):
    """A tiny random sequence classifier with MNLI's labels, built from a config (no download)."""
    import torch
    from transformers import BartConfig, BartForSequenceClassification

    from lsr.model.loading import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = BartConfig(vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        max_position_embeddings=128, num_labels=3,
                        id2label={0: "contradiction", 1: "neutral", 2: "entailment"},
                        label2id={"contradiction": 0, "neutral": 1, "entailment": 2})
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("nli") / "nli"
    BartForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_entailment_is_the_probability_of_the_entailment_label(nli_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = resolve_nli_model(str(nli_path))
    assert model.entailment_index == 2
    predictions, references = [PARAPHRASE, UNRELATED], [SAME, SAME]
    scores = entailment(predictions, references, model)
    # The same figure by hand: softmax over the classifier's logits for (premise=reference, hypothesis=summary).
    classifier = AutoModelForSequenceClassification.from_pretrained(nli_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(nli_path)
    for prediction, reference, score in zip(predictions, references, scores, strict=True):
        with torch.inference_mode():
            logits = classifier(**tokenizer(reference, prediction, return_tensors="pt")).logits
        assert score == pytest.approx(float(logits.softmax(-1)[0, 2]), abs=1e-5)
        assert 0.0 < score < 1.0


def test_an_nli_model_without_an_entailment_label_is_refused(tmp_path, nli_path):
    from transformers import AutoConfig

    with pytest.raises(InputError, match="no such directory"):
        resolve_nli_model(str(tmp_path / "none"))
    config = AutoConfig.from_pretrained(nli_path)
    config.id2label, config.label2id = {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, {}
    config.save_pretrained(tmp_path / "unlabelled")
    with pytest.raises(InputError, match="exactly one 'entailment' label"):
        resolve_nli_model(str(tmp_path / "unlabelled"))


def test_seconds_per_summary_times_each_batch_after_a_warm_up():
    calls: list[list[str]] = []
    ticks = iter([0.0, 2.0, 10.0, 14.0])  # two timed batches: 2 s and 4 s

    def summarise(chunk):
        calls.append(chunk)
        return chunk

    timings = seconds_per_summary(summarise, ["a", "b", "c"], batch_size=2, batches=2, clock=lambda: next(ticks))
    assert timings == [1.0, 2.0]  # batch seconds / documents in the batch
    assert calls == [["a", "b"], ["c", "a"], ["b", "c"]]  # warm-up first, documents cycled
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([]) is None
    assert seconds_per_summary(summarise, ["a"], batch_size=1, batches=0) == []


def test_parameter_count_counts_every_parameter():
    import torch

    layer = torch.nn.Linear(3, 2)  # 3*2 weights + 2 biases
    assert parameter_count(layer) == 8


def test_the_table_keeps_table2_columns_first_and_adds_the_new_measures():
    row = ModelResult("m", "p", 2, "f", {"rouge1": 0.4412, "rouge2": 0.2113, "rougeLsum": 0.40581, "bertscore": 0.88,
                                         "similarity": 0.71234, "entailment": 0.4, "parameters": 139_420_416,
                                         "latency_b1_p50": 0.25, "latency_b16_p50": 0.0412})
    table = markdown_table([row], "xsum")
    assert table.startswith("| Model | XSum R-1 | R-2 | R-L | BS | n | Sim | NLI | Params | s/summary b1 |")
    assert "| m | 44.12 | 21.13 | 40.58 | 0.8800 | 2 | 0.7123 | 0.4000 | 139.4M | 0.250 | 0.041 |" in table
    bare = ModelResult("b", "p", 1, "f", {"rouge1": 0.1, "rouge2": 0.1, "rougeLsum": 0.1, "bertscore": None})
    assert "| b | 10.00 | 10.00 | 10.00 | - | 1 | - | - | - | - | - |" in markdown_table([bare], "cnndm")


def test_evaluate_reports_every_new_measure_per_model(ray_local, tmp_path, xsum_path, nli_path):
    import json

    import pyarrow.parquet as pq

    from lsr.cli.main import main
    from lsr.model.loading import tiny_model

    model, tokenizer = tiny_model({"mwf_views": []}, seed=2)
    model.save_pretrained(tmp_path / "plain")
    tokenizer.save_pretrained(tmp_path / "plain")
    output = tmp_path / "eval"
    assert main(["evaluate", "--model", str(tmp_path / "plain"), "--data", str(xsum_path), "--output", str(output),
                 "--dataset", "xsum", "--limit", "3", "--num-beams", "2", "--min-new-tokens", "3",
                 "--max-new-tokens", "8", "--source-max-tokens", "128", "--no-bertscore",
                 "--nli-model", str(nli_path), "--latency-batches", "2"]) == 0
    results = json.loads((output / "results.json").read_text())
    [row] = results["models"]
    assert row["parameters"] == sum(p.numel() for p in model.parameters())
    assert row["latency_b1_p50"] > 0 and row["latency_b16_p50"] > 0
    rows = pq.read_table(row["predictions"]).to_pylist()
    assert row["similarity"] == pytest.approx(sum(r["similarity"] for r in rows) / 3)
    assert row["entailment"] == pytest.approx(sum(r["entailment"] for r in rows) / 3)
    assert results["nli_model"] == str(nli_path) and results["latency_batches"] == 2
    table = (output / "results.md").read_text()
    assert "| Sim | NLI | Params |" in table and "| plain |" in table
