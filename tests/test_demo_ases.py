"""`lsr demo --method as-es` end to end at the smallest step count: every AS-ES stage runs for real.

The demo's own ``run`` drives it, with its own flags: oracle mining and selection of the shipped sample,
``lsr segment``, the dual (ES, AS) and unified students trained one step each through Ray Train, and ``lsr
evaluate`` writing their chains and the table, then the run report. Only the default demo's two students (MWF and
plain fine-tuning) are left out, with their rows of the table: CI's ``lsr demo`` trains and evaluates those, and
the whole ``--method as-es`` run costs about three minutes here, over this suite's budget for one test (the
recorded wiring of all five trainings is in tests/test_demo_selection.py).
"""

from __future__ import annotations

import argparse
import json

import pyarrow.parquet as pq

from lsr.cli import main
from lsr.commands import demo
from lsr.errors import LsrError

DEFAULT_STUDENTS = ("mwf", "plain")


def test_the_as_es_demo_segments_trains_both_variants_and_tables_their_chains(ray_local, tmp_path, monkeypatch,
                                                                              capsys):
    run = tmp_path / "run"
    ran: list[list[str]] = []

    def stage(argv: list[str], script) -> None:
        if argv[0] == "train" and argv[argv.index("--output") + 1] in {str(run / s) for s in DEFAULT_STUDENTS}:
            return
        if argv[0] == "evaluate":  # without the two students not trained here
            models = [i for i, a in enumerate(argv) if a == "--model"]
            drop = {i + k for i in models for k in (0, 1) if argv[i + 1].split("=")[0] in ("LSR-MWF", "BART")}
            argv = [a for i, a in enumerate(argv) if i not in drop]
        ran.append(argv)
        if main(argv) != 0:
            raise LsrError(f"stage `lsr {argv[0]}` failed")

    monkeypatch.setattr(demo, "_stage", stage)
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--method", "as-es", "--steps", "1", "--workers", "1", "--test-size", "4",
                              "--no-bertscore", "--output", str(run)])
    assert demo.run(args) == 0
    assert [a[0] for a in ran] == ["mine", "select", "segment", "train", "train", "train", "evaluate"]

    segmented = pq.read_table(run / "seg" / "segmented").to_pylist()
    report = json.loads((run / "seg" / "segment_report.json").read_text())
    assert report["rows"] == len(segmented) > 0 and report["per_role"]["sentence"]["ES"] > 0
    for folder, variant in (("ases-es", "dual-es"), ("ases-as", "dual-as"), ("ases-unified", "unified")):
        trained = json.loads((run / folder / "train_report.json").read_text())
        assert trained["steps"] == 1 and trained["config"]["objective"]["ases_variant"] == variant

    results = {m["name"]: m for m in json.loads((run / "eval" / "results.json").read_text())["models"]}
    assert set(results) == {"AS-ES-dual", "AS-ES-unified"}
    assert results["AS-ES-dual"]["extra"] == {"ases_variant": "dual"} and results["AS-ES-dual"]["examples"] == 4
    for name in results:
        table = pq.read_table(run / "eval" / name / "predictions.parquet").to_pandas()
        assert len(table) == 4
        for prediction, rationale in zip(table["prediction"], table["rationale"], strict=True):
            chain = json.loads(rationale)
            assert chain["summary"] == prediction and 1 <= chain["rounds"] <= 8
    printed = capsys.readouterr().out
    assert "| AS-ES-dual |" in printed and "| AS-ES-unified |" in printed  # the comparison table
    assert (run / "report.html").is_file()
