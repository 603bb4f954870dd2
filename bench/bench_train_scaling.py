"""Training throughput of the tiny MWF student on Ray Train: examples per second per worker, 1 vs 2 workers.

Both runs train the same model on the same selected rows (stand-in rationales built from the gold summaries of
the 40 CNN/DM rows shipped in lsr/samples, cycled to ``--rows``) for the same number of steps, without
validation; each reports the rank-0 worker's examples/s over its training loop (model build and Ray start-up
excluded). On a machine with two
cores, two workers share them, so expect per-worker throughput to fall and total throughput to rise a little.

    python bench/bench_train_scaling.py [--steps 30] [--rows 128] [--batch-size 4] [--source-max-tokens 256]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lsr.core.config import resolve
from lsr.core.ray_utils import init_ray
from lsr.core.schema import SCORED
from lsr.data.rouge import split_sentences
from lsr.model.loading import SAMPLES_DIR
from lsr.training.config import TrainConfig
from lsr.training.trainer import train

DATA = SAMPLES_DIR / "cnndm_sample.jsonl"


def selection(rows: int, folder: Path) -> Path:
    records = []
    source = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i in range(rows):
        r = {**source[i % len(source)], "id": f"{source[i % len(source)]['id']}-{i}"}
        sentences = split_sentences(r["summary"])
        records.append({
            "id": r["id"], "document": r["document"], "summary": r["summary"],
            "aspects": [" ".join(s.split()[:3]) for s in sentences], "sentences": sentences,
            "triples": [[{"subject": s.split()[0], "relation": "is about", "object": " ".join(s.split()[1:6])}]
                        for s in sentences],
        })  # fmt: skip
    (folder / "kept").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(records, schema=SCORED), folder / "kept" / "part-0.parquet")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--source-max-tokens", type=int, default=256)
    args = parser.parse_args()

    init_ray(num_cpus=4)  # 2 physical cores; logical CPUs so that Ray's actors fit beside two workers
    with tempfile.TemporaryDirectory() as tmp:
        data = selection(args.rows, Path(tmp) / "selected")
        speed = {}
        for workers in (1, 2):
            given = {
                "data": str(data), "output": f"{tmp}/w{workers}", "dataset": "cnndm", "checkpoint": "tiny",
                "workers": workers, "max_steps": args.steps, "batch_size": args.batch_size,
                "model": {"warmup_steps": 10, "lr_scale": 0.01, "source_max_tokens": args.source_max_tokens,
                          "target_max_tokens": 64},
                "rationale_max_tokens": 64, "checkpoint_every": args.steps, "log_every": args.steps,
            }  # fmt: skip
            outcome = train(resolve(TrainConfig, given))
            speed[workers] = outcome.metrics["examples_per_s"]
    print(f"tiny MWF, {args.steps} steps, batch {args.batch_size}/worker, source {args.source_max_tokens} tokens")
    for workers, per_worker in speed.items():
        print(f"{workers} worker(s): {per_worker:7.2f} examples/s per worker, {workers * per_worker:7.2f} in total")
    print(
        f"ratio per worker (2 / 1): {speed[2] / speed[1]:.2f}; total throughput ratio (2 / 1): "
        f"{2 * speed[2] / speed[1]:.2f}"
    )


if __name__ == "__main__":
    main()
