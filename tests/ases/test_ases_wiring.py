"""AS-ES students in `lsr evaluate` and `lsr serve`: found by their training report (or ES_DIR+AS_DIR), they write
their chain, the summary is scored or answered, and the rationale is kept (predictions) or explained (serve).

The checkpoints are tiny random BARTs beside a `train_report.json` like the one `lsr train --objective as-es`
writes (tests/ases/test_ases.py trains real ones through Ray Train; here only the wiring is under test)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lsr.ases.student import AsEsStudent, as_es_student
from lsr.cli.main import main
from lsr.core.errors import InputError
from tests.helpers.paths import SAMPLES


def _student(run: Path, variant: str | None) -> str:
    """A tiny BART under RUN/model; with ``variant``, a training report saying it was trained as that AS-ES half."""
    from lsr.model.loading import tiny_model

    model, tokenizer = tiny_model({"mwf_views": []}, seed=0)
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    objective = {"kind": "as-es", "ases_variant": variant} if variant else {"kind": "finetune"}
    report = {"config": {"dataset": "cnndm", "objective": objective}}
    (run / "train_report.json").write_text(json.dumps(report))
    return str(run / "model")


@pytest.fixture(scope="module")
def students(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("students")
    return {name: _student(root / name, variant) for name, variant in
            (("es", "dual-es"), ("as", "dual-as"), ("uni", "unified"), ("plain", None))}  # fmt: skip


def test_the_training_report_or_the_dual_syntax_says_which_model_is_an_as_es_student(students):
    assert as_es_student(students["plain"]) is None
    assert as_es_student(students["uni"]) == AsEsStudent(students["uni"], None)
    dual = as_es_student(f"{students['es']}+{students['as']}")
    assert dual == AsEsStudent(students["es"], students["as"]) and dual.variant == "dual"
    with pytest.raises(InputError, match="dual-es half of a dual AS-ES student .* ES_DIR\\+AS_DIR"):
        as_es_student(students["es"])
    with pytest.raises(InputError, match="trained as dual-as; .* dual-es model first"):
        as_es_student(f"{students['as']}+{students['es']}")
    with pytest.raises(InputError, match="two folders"):
        as_es_student(f"{students['es']}+")
    # Unnamed, a dual student is named after both runs (lsr evaluate's row, lsr serve's model id).
    from lsr.evaluation.results import model_names

    assert model_names([f"{students['es']}+{students['as']}", students["uni"]])[0][0] == "es+as"


def test_lsr_evaluate_scores_as_es_students_and_keeps_their_rationale(students, ray_local, tmp_path):
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", f"uni={students['uni']}", "--model", f"dual={students['es']}+{students['as']}",
            "--model", f"plain={students['plain']}", "--data", str(SAMPLES / "cnndm_sample.jsonl"),
            "--output", str(out), "--dataset", "cnndm", "--limit", "2", "--num-beams", "1", "--min-new-tokens", "0",
            "--max-new-tokens", "4", "--source-max-tokens", "64", "--no-bertscore", "--no-similarity",
            "--latency-batches", "0"]
    assert main(argv) == 0
    results = {r["name"]: r for r in json.loads((out / "results.json").read_text())["models"]}
    assert set(results) == {"uni", "dual", "plain"}
    one = results["plain"]["parameters"]
    assert results["uni"]["parameters"] == one and results["dual"]["parameters"] == 2 * one  # both halves counted
    for name in ("uni", "dual"):
        table = pq.read_table(out / name / "predictions.parquet").to_pandas()
        assert len(table) == 2
        for prediction, rationale in zip(table["prediction"], table["rationale"], strict=True):
            chain = json.loads(rationale)
            assert chain["summary"] == prediction and chain["rounds"] >= 1
            assert [t["type"] for t in chain["turns"]] == ["ES", "AS"] * chain["rounds"]
    assert "rationale" not in pq.read_table(out / "plain" / "predictions.parquet").column_names
    # Half of a dual student is refused before Ray generates anything.
    assert main([*argv[:1], "--model", students["as"], *argv[7:]]) == 2


def test_a_served_as_es_student_answers_its_summary_with_its_own_rationale(students):
    from lsr.serving.config import ServeConfig
    from lsr.serving.summarizer import Document, ServedModel, check_servable, generation_key

    document = json.loads((SAMPLES / "cnndm_sample.jsonl").read_text().splitlines()[0])["document"]
    limits = {"num_beams": 1, "min_new_tokens": 0, "max_new_tokens": 4}
    for spec, variant in ((students["uni"], "unified"), (f"{students['es']}+{students['as']}", "dual")):
        config = ServeConfig.model_validate({"model": spec, "generation": limits, "source_max_tokens": 64})
        assert check_servable(config) == "cnndm"  # the preset from the (ES model's) training report
        served = ServedModel(config)
        assert served.info()["ases"] == variant
        key = generation_key(served.generation_for({}))
        [generated] = served.summarize([Document(document, key)])
        assert generated.chain is not None and generated.summary == generated.chain.summary
        explained = served.explanation(generated, document)
        assert explained["summary"] == generated.summary and explained["rounds"] == generated.chain.rounds
        assert [t["type"] for t in explained["turns"]] == ["ES", "AS"] * explained["rounds"]
        assert all({"grounded", "start", "end"} <= set(s) for s in explained["sentences"])
    plain = ServedModel(ServeConfig.model_validate({"model": students["plain"], "generation": limits}))
    [generated] = plain.summarize([Document(document, generation_key(plain.generation_for({})))])
    assert generated.chain is None and plain.explanation(generated, document) is None
