"""``lsr segment``: AS-ES step 1, cut each mined rationale chain into extractive and abstractive segments.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse

HELP = "split mined rationale chains into ES/AS segments (by source overlap or by a scorer's entropy) with a report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.ases.stage import SegmentConfig
    from lsr.core.cli_config import add_config_arguments

    add_config_arguments(parser, SegmentConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.ases.stage import run_segmentation
    from lsr.core.cli_config import config_from_args
    from lsr.core.ray_utils import init_ray

    config = config_from_args(args)  # every option checked before Ray starts
    init_ray(address=config.ray_address)
    report = run_segmentation(config)
    segments = report["segments"]
    print(f"{report['output']}: {report['rows']} rows, {segments['ES']} ES and {segments['AS']} AS segments "
          f"({report['scheme']} scheme); report in {config.output.rstrip('/')}/segment_report.md")
    return 0
