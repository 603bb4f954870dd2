"""The oracle engine mines the shipped samples end to end: every row, the exact schema, nothing lost."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from lsr.cli.main import main
from lsr.core.schema import RATIONALES
from lsr.data.sentences import split_sentences
from lsr.mining.oracle import oracle_outputs
from lsr.mining.parse import parse_rationale, parse_summaries


def test_lsr_mine_oracle_writes_every_cnndm_row(ray_local, cnndm_path, tmp_path, capsys):
    out = tmp_path / "rationales"
    assert (
        main(["mine", "--input", str(cnndm_path), "--output", str(out), "--dataset", "cnndm", "--engine", "oracle"])
        == 0
    )
    table = pq.read_table(out)
    assert table.schema.equals(RATIONALES)
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 40
    rows = table.to_pylist()
    assert all(r["error"] is None and r["aspects"] and r["total_summary"] for r in rows)
    assert all(len(r["aspects"]) == len(r["sentences"]) == len(r["triples"]) == len(r["sub_summaries"]) for r in rows)
    assert {r["engine"] for r in rows} == {"oracle"} and rows[0]["prompt_tokens"] is None
    report = json.loads((tmp_path / "rationales.report.json").read_text())
    assert report["complete"] and report["done"] == 40 and report["failed"] == 0
    assert "mined 40/40 documents (complete)" in capsys.readouterr().out

    # Run again with the same arguments: nothing is redone, nothing duplicated.
    files_before = sorted(p.name for p in out.glob("*.parquet"))
    assert (
        main(["mine", "--input", str(cnndm_path), "--output", str(out), "--dataset", "cnndm", "--engine", "oracle"])
        == 0
    )
    assert sorted(p.name for p in out.glob("*.parquet")) == files_before
    assert json.loads((tmp_path / "rationales.report.json").read_text())["resumed_from_earlier_runs"] == 40


def test_a_file_cut_short_is_removed_and_its_rows_redone(ray_local, xsum_path, tmp_path):
    out = tmp_path / "x"
    args = [
        "mine",
        "--input",
        str(xsum_path),
        "--output",
        str(out),
        "--dataset",
        "xsum",
        "--engine",
        "oracle",
        "--limit",
        "40",
        "--rows-per-file",
        "10",
    ]
    assert main(args) == 0
    victim = sorted(out.glob("*.parquet"))[0]
    lost = pq.read_table(victim, columns=["id"]).column("id").to_pylist()
    victim.write_bytes(victim.read_bytes()[:200])  # what a kill in the middle of a write leaves
    assert main(args) == 0
    ids = pq.read_table(out, columns=["id"]).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 40 and set(lost) <= set(ids)
    report = json.loads((tmp_path / "x.report.json").read_text())
    assert report["processed_this_run"] == len(lost) and report["broken_files_removed"]


def test_oracle_output_is_extractive_and_parses(cnndm_path):
    row = json.loads(cnndm_path.read_text().splitlines()[3])
    raw_a, raw_b = oracle_outputs(row["document"], row["summary"], "cnndm")
    rationale = parse_rationale(raw_a, "cnndm")
    summaries = parse_summaries(raw_b, "cnndm")
    assert len(rationale.aspects) == len(split_sentences(row["summary"])) and not rationale.problems
    doc = " ".join(row["document"].split())
    assert all(" ".join(s.split()[:6]) in doc for s in rationale.sentences)
    assert len(summaries.sub_summaries) == len(rationale.aspects)
