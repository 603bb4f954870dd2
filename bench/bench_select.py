"""Pairs scored per second: the Ray Data selection pass next to a single-process loop over the same pairs.

Pairs are real CNN/DM (or XSum) gold summaries (the 40 rows shipped in ``lsr/samples``) against a lead-3
"generated" summary, repeated to ``--pairs``.
Both sides run the same :func:`lsr.selection.scoring.judge`; the Ray side is :func:`lsr.selection.job.score_dataset`
over an in-memory dataset (no Parquet I/O, which the CLI adds on top), so the ratio is the parallel scoring speed-up.

    python bench/bench_select.py --dataset cnndm --pairs 4000
"""

from __future__ import annotations

import argparse
import json
import os
import time

import pyarrow as pa


def _pairs(dataset: str, n: int) -> pa.Table:
    from lsr.model.loading import SAMPLES_DIR

    lines = (SAMPLES_DIR / f"{dataset}_sample.jsonl").read_text().splitlines()
    source = [json.loads(line) for line in lines if line.strip()]
    rows = []
    for i in range(n):
        doc = source[i % len(source)]
        lead = [s for s in doc["document"].replace("\n", " ").split(". ") if s.strip()][:3]
        rows.append(
            {
                "id": f"{i}",
                "document": doc["document"],
                "summary": doc["summary"],
                "aspects": ["a"],
                "sentences": lead[:1],
                "triples": [[]],
                "sub_summaries": lead,
                "total_summary": " ".join(lead),
                "error": None,
            }
        )
    return pa.Table.from_pylist(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("cnndm", "xsum"), default="cnndm")
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-cpus", type=int, default=None, help="local Ray's CPUs (default: all cores)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

    import ray

    from lsr.core.ray_utils import init_ray
    from lsr.selection.config import rule_for
    from lsr.selection.job import score_dataset
    from lsr.selection.scoring import judge

    rule = rule_for(args.dataset)
    table = _pairs(args.dataset, args.pairs)
    rows = table.to_pylist()

    start = time.perf_counter()
    loop_scores = [judge(row, rule).scored.score for row in rows]
    loop_s = time.perf_counter() - start

    init_ray(num_cpus=args.num_cpus)
    ds = ray.data.from_arrow(table).repartition(max(1, args.pairs // args.batch_size)).materialize()
    score_dataset(ds.limit(args.batch_size), rule, batch_size=args.batch_size).materialize()  # warm the workers
    start = time.perf_counter()
    scored = score_dataset(ds, rule, batch_size=args.batch_size).materialize()
    ray_scores = scored.select_columns(["id", "score"]).to_pandas()
    ray_s = time.perf_counter() - start

    by_id = dict(zip(ray_scores["id"], ray_scores["score"], strict=True))
    assert all(abs(by_id[str(i)] - s) < 1e-12 for i, s in enumerate(loop_scores)), "the two paths disagree"
    cpus = int(ray.cluster_resources().get("CPU", 0))
    print(f"dataset {args.dataset}, {args.pairs} pairs, rule {rule.score} on {rule.score_on}, Ray CPUs {cpus}")
    print(f"single-process loop: {args.pairs / loop_s:10.1f} pairs/s ({loop_s:.2f} s)")
    print(f"Ray Data pass:       {args.pairs / ray_s:10.1f} pairs/s ({ray_s:.2f} s, incl. scheduling)")
    print(f"ratio Ray / loop:    {loop_s / ray_s:10.2f}x")


if __name__ == "__main__":
    main()
