"""``lsr report``: one HTML page a person opens in a browser, summing up a run directory.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse

HELP = "write RUN_DIR/report.html: Table 1, selection, training curves and gates, evaluation, examples"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run's folder, as `lsr demo --output` writes it")
    parser.add_argument("--output", default=None, help="where to write the page (default: RUN_DIR/report.html)")


def run(args: argparse.Namespace) -> int:
    from lsr.report import write_report

    path = write_report(args.run_dir, args.output)
    print(f"report: {path}")
    return 0
