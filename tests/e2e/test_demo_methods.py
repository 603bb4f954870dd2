"""`lsr demo --method logit-kd|as-es` end to end, each demo in a process of its own, as a user runs it.

CI's ``lsr demo`` runs the default method; these run the other two at the smallest useful step count, every stage
for real (oracle mining, selection, every student trained through Ray Train, the evaluation table, the report).
A fresh process matters: a stage that reads a checkpoint before anything registered lsr's model types (the
logit-KD teacher is an MWF-format checkpoint) fails only where no earlier import did it by chance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tests.helpers.paths import REPO

#: The table's rows each method adds to the default demo's two students.
METHOD_MODELS = {
    "logit-kd": {"Teacher", "KD", "Seq-KD", "Causal-Teacher", "Causal-KD"},
    "as-es": {"AS-ES-dual", "AS-ES-unified"},
}


def _run_demo(method: str, run) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lsr.cli", "demo", "--method", method, "--steps", "2", "--workers", "1",
               "--test-size", "4", "--no-bertscore", "--output", str(run)]
    env = {**os.environ, "RAY_ADDRESS": ""}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"lsr demo --method {method} failed ({done.returncode}):\n{done.stdout[-3000:]}" \
        f"\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHOD_MODELS))
def test_every_demo_method_runs_end_to_end_in_its_own_process(method, tmp_path):
    run = tmp_path / "run"
    done = _run_demo(method, run)
    results = {m["name"]: m for m in json.loads((run / "eval" / "results.json").read_text())["models"]}
    assert set(results) == {"LSR-MWF", "BART", *METHOD_MODELS[method]}
    assert all(m["examples"] == 4 for m in results.values())
    for name in METHOD_MODELS[method]:
        assert f"| {name} |" in done.stdout  # the one comparison table
    assert (run / "report.html").is_file()
    if method == "logit-kd":
        kd = json.loads((run / "kd" / "train_report.json").read_text())
        assert kd["steps"] == 2 and kd["config"]["objective"]["kind"] == "logit-kd"
    else:
        segmented = pq.read_table(run / "seg" / "segmented").to_pylist()
        report = json.loads((run / "seg" / "segment_report.json").read_text())
        assert report["rows"] == len(segmented) > 0 and report["per_role"]["sentence"]["ES"] > 0
        for folder, variant in (("ases-es", "dual-es"), ("ases-as", "dual-as"), ("ases-unified", "unified")):
            trained = json.loads((run / folder / "train_report.json").read_text())
            assert trained["steps"] == 2 and trained["config"]["objective"]["ases_variant"] == variant
        assert results["AS-ES-dual"]["extra"] == {"ases_variant": "dual"}
        for name in METHOD_MODELS[method]:
            table = pq.read_table(run / "eval" / name / "predictions.parquet").to_pandas()
            for prediction, rationale in zip(table["prediction"], table["rationale"], strict=True):
                chain = json.loads(rationale)
                assert chain["summary"] == prediction and 1 <= chain["rounds"] <= 8
