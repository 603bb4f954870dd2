"""Step 2 on Ray Data: the kept/rejected partition, its reasons, the report, and the guard on held-out splits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsr.cli.main import main as cli_main
from lsr.core import schema
from lsr.core.config import SelectionPreset
from lsr.core.errors import InputError
from lsr.selection.config import rule_for
from lsr.selection.job import run_selection
from lsr.selection.scoring import judge
from lsr.selection.split_guard import check_split, held_out_tokens


def _read(folder: Path) -> pa.Table:
    return pq.read_table(folder)


@pytest.fixture(scope="module")
def selected(tmp_path_factory, ray_local, cnndm_path, mined_rows, write_mined):
    """One CNN/DM selection run shared by the tests that only read its outputs; the rows are ``mined_rows``'s
    (tests/conftest.py): row i holds selection case i % 6."""
    base = tmp_path_factory.mktemp("select")
    rows = mined_rows(cnndm_path)
    mined = write_mined(base / "mined", rows)
    result = run_selection(str(mined), str(base / "out"), rule_for("cnndm"), dataset="cnndm")
    return rows, base / "out", result


def test_partition_is_complete_and_disjoint(selected):
    rows, out, result = selected
    kept, rejected = _read(out / "kept"), _read(out / "rejected")
    kept_ids, rejected_ids = kept.column("id").to_pylist(), rejected.column("id").to_pylist()
    assert len(kept_ids) + len(rejected_ids) == len(rows)
    assert set(kept_ids) | set(rejected_ids) == {r["id"] for r in rows}
    assert not set(kept_ids) & set(rejected_ids)
    assert all(kept.column("kept").to_pylist()) and not any(rejected.column("kept").to_pylist())
    assert (result.kept, result.rejected) == (len(kept_ids), len(rejected_ids))


def test_outputs_have_the_scored_schema_and_carry_the_mined_columns(selected):
    rows, out, _ = selected
    for side in ("kept", "rejected"):
        table = _read(out / side)
        assert table.schema.names == schema.SCORED.names
        assert table.schema.field("score").type == pa.float64()
    kept = {r["id"]: r for r in _read(out / "kept").to_pylist()}
    source = {r["id"]: r for r in rows}
    some_id = next(iter(kept))
    assert kept[some_id]["document"] == source[some_id]["document"]
    assert kept[some_id]["raw_rationale"] == "raw" and kept[some_id]["problems"] is None  # absent -> null


def test_each_row_gets_its_reason_and_the_same_verdict_as_the_pure_judge(selected, cnndm_path):
    rows, out, _ = selected
    expected_reason = {0: None, 1: None, 2: "score_above_threshold", 3: "mining_error", 4: "empty_rationale",
                       5: "empty_generated_summary"}
    written = {r["id"]: r for side in ("kept", "rejected") for r in _read(out / side).to_pylist()}
    rule = rule_for("cnndm")
    for i, row in enumerate(rows):
        got = written[row["id"]]
        assert got["reject_reason"] == expected_reason[i % 6], (i, got["reject_reason"])
        verdict = judge(row, rule)
        assert got["kept"] == verdict.kept
        if verdict.scored is None:
            assert got["score"] is None and got["rouge1"] is None
        else:
            assert got["score"] == pytest.approx(verdict.scored.score)
            assert got["rouge2"] == pytest.approx(verdict.scored.rouge2)
    errored = [r for r in written.values() if r["reject_reason"] == "mining_error"]
    assert errored and all(r["error"] == "teacher returned HTTP 500" for r in errored)  # the miner's text stays


def test_report_holds_table1_reasons_and_the_score_distribution(selected):
    rows, out, result = selected
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(json.dumps(result.report))
    kept_rows = [r for i, r in enumerate(rows) if i % 6 in (0, 1)]
    assert report["before"]["examples"] == len(rows)
    assert report["after"]["examples"] == len(kept_rows) == report["kept"]
    words = sum(len(r["document"].split()) for r in kept_rows) / len(kept_rows)
    assert report["after"]["avg_document_words"] == pytest.approx(words)
    assert report["rejected_by_reason"] == {"mining_error": 4, "empty_rationale": 4, "empty_generated_summary": 4,
                                            "score_above_threshold": 4}
    hist = report["scores"]["histogram"]
    assert sum(hist["kept"]) == len(kept_rows) and sum(hist["rejected"]) == 4
    assert report["scores"]["count"] == 12 and report["scores"]["min"] == pytest.approx(0.5)
    markdown = (out / "report.md").read_text()
    assert "| before selection | 24 |" in markdown and "| score_above_threshold | 4 |" in markdown
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_threshold_and_score_on_overrides_reach_the_pass_even_when_nothing_is_kept(
    tmp_path, ray_local, cnndm_path, mined_rows, write_mined
):
    rows = mined_rows(cnndm_path, 6)
    mined = write_mined(tmp_path / "mined", rows, files=1)
    # score_on=total: row 5 (no sub-summaries) is scored, not rejected as empty; threshold 0.4 is below Score1's floor
    # of 0.5, so every scored row is rejected by score.
    rule = rule_for("cnndm", threshold=0.4, score_on="total")
    result = run_selection(str(mined), str(tmp_path / "out"), rule, dataset="cnndm")
    assert result.kept == 0 and result.report["after"] == {"examples": 0, "avg_document_words": 0.0,
                                                           "avg_summary_words": 0.0}
    assert result.report["rejected_by_reason"]["score_above_threshold"] == 4
    assert result.report["rule"]["score_on"] == "total"
    # Nothing kept still leaves a kept/ folder the next stage can open: no rows, the SCORED schema.
    kept = _read(tmp_path / "out" / "kept")
    assert kept.num_rows == 0 and kept.schema.names == schema.SCORED.names
    assert _read(tmp_path / "out" / "rejected").num_rows == len(rows)


def test_held_out_tokens_are_whole_words():
    assert held_out_tokens(["cnndm_dev_mined"]) == {"dev"}
    assert held_out_tokens(["xsum-TEST.parquet", "validation"]) == {"test", "validation"}
    assert held_out_tokens(["latest", "contest_train", "devices", "train-00001.parquet"]) == set()


def test_split_guard_refuses_a_dev_folder_unless_forced(tmp_path, ray_local, cnndm_path, mined_rows, write_mined):
    mined = write_mined(tmp_path / "cnndm_dev_mined", mined_rows(cnndm_path, 6), files=1)
    with pytest.raises(InputError, match="test or validation split.*'dev'.*--force"):
        run_selection(str(mined), str(tmp_path / "out"), rule_for("cnndm"), dataset="cnndm")
    assert not (tmp_path / "out").exists()  # refused before anything was written
    result = run_selection(str(mined), str(tmp_path / "out"), rule_for("cnndm"), dataset="cnndm", force=True)
    assert result.report["split_guard_overridden"] == ["name token 'dev'"]
    assert "Split guard overridden" in (tmp_path / "out" / "report.md").read_text()


def test_split_guard_reads_parquet_metadata_and_a_split_column(tmp_path, cnndm_path, mined_rows, write_mined):
    rows = mined_rows(cnndm_path, 4)
    by_metadata = write_mined(tmp_path / "a", rows, metadata={"split": "validation"}, files=1)
    with pytest.raises(InputError, match="split marker 'validation'"):
        check_split(str(by_metadata))
    by_column = tmp_path / "b"
    by_column.mkdir()
    table = pa.Table.from_pylist([{**r, "split": "test"} for r in rows])
    pq.write_table(table, by_column / "part.parquet")
    with pytest.raises(InputError, match="split marker 'test'"):
        check_split(str(by_column))
    train = write_mined(tmp_path / "c", rows, metadata={"split": "train"}, files=1)
    assert check_split(str(train)) == []
    # The folders above the input say where a run lives, not what it holds: pytest's own "test_..." is ignored.
    assert "test" in str(train)


def test_split_guard_follows_the_mining_report_to_the_file_that_was_mined(
    tmp_path, cnndm_path, mined_rows, write_mined
):
    rows = mined_rows(cnndm_path, 4)
    mined = write_mined(tmp_path / "mined", rows, files=1)
    assert check_split(str(mined)) == []  # no report beside it: nothing to go on but the names
    report = tmp_path / "mined.report.json"
    report.write_text(json.dumps({"input_path": "/data/xsum_test.jsonl", "output_path": str(mined)}))
    with pytest.raises(InputError, match=r"mined from /data/xsum_test.jsonl \(token 'test'\)"):
        check_split(str(mined))
    # Only the mined file's own name counts, not the folders above it.
    report.write_text(json.dumps({"input_path": "/tests/data/train.jsonl"}))
    assert check_split(str(mined)) == []
    report.write_text("{not json")
    assert check_split(str(mined)) == []  # an unreadable report is no evidence either way


def test_cli_refuses_to_append_to_an_earlier_run_and_overwrite_replaces_it(
    tmp_path, ray_local, cnndm_path, capsys, mined_rows, write_mined
):
    mined = write_mined(tmp_path / "mined", mined_rows(cnndm_path, 6), files=1)
    args = ["select", "--input", str(mined), "--output", str(tmp_path / "out"), "--dataset", "cnndm"]
    assert cli_main(args) == 0
    assert "kept 2 of 6 rows" in capsys.readouterr().out
    assert cli_main(args) == 2
    assert "already holds kept/" in capsys.readouterr().err
    assert cli_main([*args, "--overwrite"]) == 0
    total = _read(tmp_path / "out" / "kept").num_rows + _read(tmp_path / "out" / "rejected").num_rows
    assert total == 6


def test_cli_reports_bad_inputs_in_one_line(tmp_path, ray_local, cnndm_path, capsys, mined_rows, write_mined):
    docs_only = tmp_path / "docs"
    docs_only.mkdir()
    pq.write_table(pa.Table.from_pylist([{"id": "1", "document": "d", "summary": "s"}]), docs_only / "p.parquet")
    out = str(tmp_path / "out")
    assert cli_main(["select", "--input", str(docs_only), "--output", out, "--dataset", "cnndm"]) == 2
    assert "missing column(s) aspects" in capsys.readouterr().err
    mined = write_mined(tmp_path / "mined", mined_rows(cnndm_path, 2), files=1)
    assert cli_main(["select", "--input", str(mined), "--output", out, "--dataset", "cnndm", "--threshold", "85"]) == 2
    assert "fractions (0.85, not 85)" in capsys.readouterr().err


def test_xsum_defaults_score_the_total_summary_with_score2_and_rouge_l():
    rule = rule_for("xsum")
    assert rule == SelectionPreset(score="score2", threshold=0.65, third_rouge="rougeL", score_on="total")
    assert rule_for("xsum", third_rouge="rouge3").third_rouge == "rouge3"
    assert rule_for("cnndm") == SelectionPreset(score="score1", threshold=0.85, third_rouge="rougeL", score_on="sub")


def test_oracle_mining_then_selection_on_real_xsum_rows(tmp_path, ray_local, xsum_path, capsys):
    """The real chain: ``lsr mine --engine oracle`` output goes straight into ``lsr select``."""
    mined = tmp_path / "mined_train"
    # The shipped sample holds XSum test-split rows; named as such, the split guard must notice them.
    test_split = tmp_path / "xsum_test.jsonl"
    shutil.copyfile(xsum_path, test_split)
    assert cli_main(["mine", "--input", str(test_split), "--output", str(mined), "--dataset", "xsum",
                     "--engine", "oracle", "--limit", "16"]) == 0
    out = tmp_path / "selected"
    # The guard follows the mining report to the test-split file that was mined.
    assert cli_main(["select", "--input", str(mined), "--output", str(out), "--dataset", "xsum"]) == 2
    assert "mined from" in capsys.readouterr().err
    assert cli_main(["select", "--input", str(mined), "--output", str(out), "--dataset", "xsum", "--force"]) == 0
    ids = set(pq.read_table(mined, columns=["id"]).column("id").to_pylist())
    kept, rejected = _read(out / "kept"), _read(out / "rejected")
    assert len(ids) == 16 and kept.num_rows + rejected.num_rows == 16
    assert set(kept.column("id").to_pylist()) | set(rejected.column("id").to_pylist()) == ids
    report = json.loads((out / "report.json").read_text())
    assert report["rule"]["score"] == "score2" and report["scores"]["count"] == 16  # XSum scores the total summary
    assert all(x is not None for x in rejected.column("rouge_x").to_pylist())  # Score2's ROUGE-L term is filled
    assert sum(report["rejected_by_reason"].values()) == report["rejected"]
