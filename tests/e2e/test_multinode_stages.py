"""``lsr select`` and ``lsr evaluate`` on several nodes: the work spreads over two worker nodes, and the results are
those of a single-node run (the same kept ids and scores, the same predictions and ROUGE).

One three-node loopback cluster (tests/helpers/cluster.py: a head with no CPUs, two CPU workers, as cluster.yaml's
``cpu_worker`` runs reading, selection and evaluation's metrics) runs both commands as subprocesses, through the CLI;
where the work ran is read back from Ray's state API (the node of every finished task and of every generation
actor). The single-node runs are the same commands, in this process, on the session's local Ray (``ray_local``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers.paths import REPO

pytestmark = pytest.mark.multinode

#: Copies of the 24 mined-looking rows (tests/conftest.py's ``mined_rows``): enough rows for several scoring tasks.
COPIES = 32
#: Bytes of Parquet row groups per read task, for the cluster run only (Ray's default, 128 MiB, reads all 768 rows
#: in one task: one block, so one scoring task on one node): each mined file becomes a read task of its own.
SMALL_READ_UNIT = 64 * 1024
#: Seconds Ray Data waits for the whole generation pool before it hands out blocks, for the cluster run only (Ray's
#: default, -1, hands them to the first actor ready: with 4 blocks of tiny work it summarises them all before the
#: other has loaded its model).
WAIT_FOR_ACTORS_S = 120
#: Evaluation: documents, and the files they are split into (one read task, so one block, per file).
EVAL_DOCUMENTS = 8
EVAL_FILES = 4


def _lsr(args: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "lsr.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-4000:])
    return time.monotonic() - started


def _in_process(args: list[str]) -> float:
    """The single-node run: the same command on the session's local Ray (``ray_local``), Ray's defaults."""
    from lsr.cli.main import main

    started = time.monotonic()
    assert main(args) == 0, args
    return time.monotonic() - started


def _scored(folder: Path) -> dict[str, tuple]:
    rows = [r for side in ("kept", "rejected") for r in pq.read_table(folder / side).to_pylist()]
    return {r["id"]: (r["kept"], r["score"], r["rouge1"], r["rouge2"], r["reject_reason"]) for r in rows}


def test_select_and_evaluate_spread_over_two_nodes_and_match_a_single_node_run(
    ray_local, loopback_cluster, tmp_path, cnndm_path, xsum_path, mined_rows, write_mined
):
    from lsr.model.loading import tiny_model

    cluster = loopback_cluster([("cpu_worker", 2), ("cpu_worker", 2)])
    workers = set(cluster.worker_ids())
    timings = {}

    # ---- lsr select: the ROUGE pass over 768 rows in 6 files
    base = mined_rows(cnndm_path)
    rows = [{**row, "id": f"{row['id']}-{k}"} for k in range(COPIES) for row in base]
    mined = write_mined(tmp_path / "mined", rows, files=6)
    select = ["select", "--input", str(mined), "--dataset", "cnndm"]
    timings["select, cluster"] = _lsr([*select, "--output", str(tmp_path / "sel-cluster")],
                                      cluster.env(RAY_DATA_PARQUET_BIN_PACKING_BYTES=str(SMALL_READ_UNIT)))
    scoring = cluster.task_nodes("score_batch")
    assert set(scoring) <= workers and len(scoring) == 2, scoring  # both workers scored, the head none
    timings["select, one node"] = _in_process([*select, "--output", str(tmp_path / "sel-local")])
    on_cluster, alone = _scored(tmp_path / "sel-cluster"), _scored(tmp_path / "sel-local")
    assert len(on_cluster) == len(rows) and on_cluster == alone
    report = json.loads((tmp_path / "sel-cluster" / "report.json").read_text())
    assert report["kept"] == sum(kept for kept, *_ in alone.values()) == 2 * len(rows) // 6

    # ---- lsr evaluate: two generation actors on the tiny model, documents in 4 files
    model, tokenizer = tiny_model({"mwf_views": ["ea", "as", "ter"]}, seed=1)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    data = tmp_path / "test-docs"
    data.mkdir()
    lines = xsum_path.read_text().splitlines()[:EVAL_DOCUMENTS]
    step = EVAL_DOCUMENTS // EVAL_FILES
    for part in range(EVAL_FILES):
        (data / f"part-{part}.jsonl").write_text("\n".join(lines[part * step:(part + 1) * step]) + "\n")
    evaluate = ["evaluate", "--model", f"mwf={tmp_path / 'model'}", "--data", str(data), "--dataset", "xsum",
                "--concurrency", "2", "--batch-size", "1", "--num-beams", "2", "--min-new-tokens", "3",
                "--max-new-tokens", "8", "--source-max-tokens", "128", "--no-bertscore", "--no-similarity",
                "--latency-batches", "0"]
    timings["evaluate, cluster"] = _lsr([*evaluate, "--output", str(tmp_path / "eval-cluster")],
                                        cluster.env(RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S=str(WAIT_FOR_ACTORS_S)))
    # Where the generation actors ran their batches (the state API's record of a dead actor may have lost its node;
    # its tasks keep theirs).
    generation = cluster.task_nodes("MapBatches(Summarizer)).submit")
    assert set(generation) == workers, (generation, workers)
    timings["evaluate, one node"] = _in_process([*evaluate, "--output", str(tmp_path / "eval-local")])

    results = {where: json.loads((tmp_path / f"eval-{where}" / "results.json").read_text())["models"][0]
               for where in ("cluster", "local")}
    for key in ("rouge1", "rouge2", "rougeLsum", "examples"):
        assert results["cluster"][key] == results["local"][key], key
    predictions = {where: sorted((r["id"], r["prediction"]) for r in pq.read_table(
        tmp_path / f"eval-{where}" / "mwf" / "predictions.parquet").to_pylist()) for where in ("cluster", "local")}
    assert len(predictions["cluster"]) == EVAL_DOCUMENTS and predictions["cluster"] == predictions["local"]
    print("multinode stages:", ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
          f"; scoring tasks per node {sorted(scoring.values())}, generation tasks per node "
          f"{sorted(generation.values())}")
