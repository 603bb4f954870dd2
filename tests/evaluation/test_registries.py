"""The two open seams: a metric registered once reaches every table, and ``generate`` dispatches to a registered
decoder. Each test registers its fake for itself and leaves the registries as it found them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

import lsr.model.generate as generation
from lsr.evaluation.metrics import registry
from lsr.evaluation.metrics.base import Column, Metric, fixed


def _words(predictions, references, resolved) -> dict[str, list[float]]:
    return {"summary_words": [float(len(p.split())) for p in predictions]}


WORDS = Metric(
    name="words",
    per="example",
    columns=(Column("summary_words", "Words", fixed(1)),),
    describe=lambda meta: f"Words: summary length ({meta.get('words_rule')}).",
    record=lambda resolved: {"words_rule": "whitespace"},
    score=_words,
)


@pytest.fixture
def words_metric(monkeypatch) -> Iterator[Metric]:
    with monkeypatch.context() as patch:
        patch.setattr(registry, "METRICS", [*registry.METRICS, WORDS])
        yield WORDS
    assert WORDS not in registry.metrics()


def test_a_registered_metric_reaches_the_table_the_json_and_the_report(words_metric, tmp_path):
    from lsr.evaluation.job import model_result, score_predictions
    from lsr.evaluation.results import write_tables
    from lsr.report.sections import evaluation_section

    resolved = {"rouge": True, "words": True}  # every other metric off, as --no-bertscore etc. would leave them
    scores = score_predictions(["a b c", "a b c d e"], ["a b", "c d"], resolved)
    assert scores["summary_words"] == [3.0, 5.0] and "bertscore" not in scores
    result = model_result("m", "p", 2, "f", scores, {"parameters": 10, "device": "cpu"}, {})
    markdown = write_tables([result], str(tmp_path / "eval"), "xsum", {"data": "d", "examples": 2,
                                                                        **registry.records(resolved)})
    header, _, row = markdown.splitlines()[:3]
    assert header.endswith("| s/summary b16 | Words |") and row.endswith("| 4.0 |")
    assert "Words: summary length (whitespace)." in markdown
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert saved["models"][0]["summary_words"] == pytest.approx(4.0) and saved["words_rule"] == "whitespace"
    assert saved["models"][0]["bertscore"] is None  # not measured, still a key
    html = str(evaluation_section(tmp_path).body)
    assert "Words" in html and "4.0" in html and "summary length (whitespace)" in html


def test_a_registered_metric_is_scored_by_lsr_evaluate(words_metric, ray_local, tmp_path, xsum_path):
    import pyarrow.parquet as pq

    from lsr.cli.main import main
    from lsr.model.loading import tiny_model

    model, tokenizer = tiny_model({"mwf_views": []}, seed=1)
    model.save_pretrained(tmp_path / "plain")
    tokenizer.save_pretrained(tmp_path / "plain")
    output = tmp_path / "eval"
    assert main(["evaluate", "--model", str(tmp_path / "plain"), "--data", str(xsum_path), "--output", str(output),
                 "--dataset", "xsum", "--limit", "2", "--num-beams", "1", "--max-new-tokens", "6",
                 "--source-max-tokens", "64", "--no-bertscore", "--no-similarity", "--latency-batches", "0"]) == 0
    saved = json.loads((output / "results.json").read_text())["models"][0]
    rows = pq.read_table(saved["predictions"]).to_pylist()
    assert [r["summary_words"] for r in rows] == [float(len(r["prediction"].split())) for r in rows]
    assert saved["summary_words"] == pytest.approx(sum(r["summary_words"] for r in rows) / 2)
    assert "| Words |" in (output / "results.md").read_text()


def test_a_metric_declares_how_it_is_computed():
    with pytest.raises(ValueError, match="per-example metric scores examples"):
        Metric(name="x", per="example", columns=(Column("x", "X", str),))
    with pytest.raises(ValueError, match="per-model metric measures the model"):
        Metric(name="x", per="model", columns=(Column("x", "X", str),), score=_words)
    assert Column("x", "X", fixed(2)).cell(None) == "-" and Column("x", "X", fixed(2)).cell("odd") == "-"


def test_generate_dispatches_to_the_models_family_or_to_a_named_decoder(monkeypatch):
    calls = []

    def shout(model, tokenizer, documents, *, source_max_tokens, generation_kwargs, device):
        calls.append((model.name, source_max_tokens, device))
        return [d.upper() for d in documents]

    seq2seq = SimpleNamespace(name="bart", config=SimpleNamespace(is_encoder_decoder=True))
    causal = SimpleNamespace(name="gpt2", config=SimpleNamespace(is_encoder_decoder=False))
    monkeypatch.setitem(generation.DECODERS, "shout", shout)
    monkeypatch.setitem(generation.DECODERS, "seq2seq", shout)
    assert generation.decoder_for(seq2seq) == "seq2seq" and generation.decoder_for(causal) == "causal"
    assert generation.generate(seq2seq, None, ["a b"], source_max_tokens=8, generation_kwargs={}) == ["A B"]
    assert generation.generate(causal, None, ["c"], source_max_tokens=4, generation_kwargs={}, device="meta",
                               decoder="shout") == ["C"]
    assert calls == [("bart", 8, "cpu"), ("gpt2", 4, "meta")]
    with pytest.raises(ValueError, match="no decoder 'beam-sampling'; registered: causal, seq2seq, shout"):
        generation.generate(causal, None, ["c"], source_max_tokens=4, generation_kwargs={}, decoder="beam-sampling")
