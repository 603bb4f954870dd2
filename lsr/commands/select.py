"""``lsr select``: paper Step 2, keep the mined examples whose generated summaries agree with the gold one."""

from __future__ import annotations

import argparse

from lsr.config import DATASETS
from lsr.scoring import SCORE_ON, THIRD_ROUGE

HELP = "score mined rationales with ROUGE (Score1/Score2) and split them into kept/ and rejected/ with a report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="the mining stage's Parquet output (folder, local or s3://)")
    parser.add_argument("--output", required=True, help="folder for kept/, rejected/, report.json, report.md, "
                        "scores.png (local or s3://)")
    parser.add_argument("--dataset", required=True, choices=DATASETS,
                        help="picks the paper's rule: Score1 <= 0.85 (cnndm) or Score2 <= 0.65 (xsum)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="keep rows with score <= this (a fraction in [0, 1]; default: the paper's)")
    parser.add_argument("--score-on", choices=SCORE_ON, default=None,
                        help="which generated text is scored: sub-summaries, the total summary, or both (the "
                        "worse of the two counts); default: sub for cnndm, total for xsum")
    parser.add_argument("--third-rouge", choices=THIRD_ROUGE, default=None,
                        help="Score2's third term (default rougeL as in the authors' code; rouge3 as printed)")
    parser.add_argument("--config", default=None, help="a YAML preset overriding the paper's defaults")
    parser.add_argument("--force", action="store_true",
                        help="filter even if the input looks like a test/validation/dev split (demos only)")
    parser.add_argument("--overwrite", action="store_true", help="replace kept/ and rejected/ of an earlier run")
    parser.add_argument("--ray-address", default=None, help="a Ray cluster (default: RAY_ADDRESS or a local Ray)")


def run(args: argparse.Namespace) -> int:
    from lsr import console
    from lsr.ray_utils import init_ray
    from lsr.selection import rule_for, run_selection

    rule = rule_for(args.dataset, threshold=args.threshold, score_on=args.score_on,
                    third_rouge=args.third_rouge, config=args.config)
    started = console.header("select", f"{args.input} -> {args.output}, keep {rule.score} <= {rule.threshold} "
                             f"on the {rule.score_on} summaries")
    init_ray(address=args.ray_address)
    out = args.output.rstrip("/")
    # Rows land in kept/ and rejected/ once scored; their sum is the pairs scored so far.
    seen: dict = {}
    with console.Progress("pairs scored") as bar, console.Poll(
        bar, lambda: console.parquet_rows(f"{out}/kept", seen) + console.parquet_rows(f"{out}/rejected", seen)
    ):
        result = run_selection(args.input, args.output, rule, dataset=args.dataset, force=args.force,
                               overwrite=args.overwrite)
    console.summary(started, result.summary_line(), wrote=[f"{out}/{name}" for name in
                                                           ("kept", "rejected", "report.md", "scores.png")])
    for flag in result.report.get("split_guard_overridden") or []:
        console.warn(f"--force filtered an input that looks held out ({flag}); only training data should be")
    return 0
