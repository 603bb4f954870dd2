"""``lsr data``: look at a corpus before spending GPU hours on it."""

from __future__ import annotations

import argparse
import json

HELP = "inspect input data (lsr data stats PATH: examples and average words, as in the paper's Table 1)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    stats = sub.add_parser("stats", help="examples and average words per document and summary")
    stats.add_argument("path", help="a JSON Lines, Parquet or CSV file or folder, local or s3://")
    stats.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def run(args: argparse.Namespace) -> int:
    from lsr import console
    from lsr.io import read_documents
    from lsr.stats import corpus_stats

    started = None if args.json else console.header("data stats", args.path)  # --json prints the JSON only
    ds, report = read_documents(args.path)
    stats = corpus_stats(ds)
    if args.json:
        print(json.dumps({**stats.to_dict(), "input": report.to_dict()}, indent=2))
        return 0
    console.summary(started, f"{report.rows_read} rows read from {len(report.files)} file(s)")
    print(f"{'examples':<24}{stats.examples:>10}")
    print(f"{'avg words / document':<24}{stats.avg_document_words:>10.1f}")
    print(f"{'avg words / summary':<24}{stats.avg_summary_words:>10.1f}")
    print(f"{'removed before stats':<24}{sum(report.removed.values()):>10}  {report.removed or ''}".rstrip())
    return 0
