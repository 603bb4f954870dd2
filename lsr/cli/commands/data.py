"""``lsr data``: look at a corpus before spending GPU hours on it.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse
import json
from typing import Annotated

from pydantic import Field

from lsr.core.cli_config import Flag
from lsr.core.config import StageConfig

HELP = "inspect input data (lsr data stats PATH: examples and average words, as in the paper's Table 1)"


class StatsConfig(StageConfig):
    """``lsr data stats``: what to count and how to print it (flags generated from here)."""

    path: Annotated[str, Flag(positional=True, metavar="PATH")] = Field(
        description="a JSON Lines, Parquet or CSV file or folder, local or s3://"
    )
    as_json: Annotated[bool, Flag(name="--json")] = Field(
        default=False, description="print the figures as one JSON object"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.core.cli_config import add_config_arguments

    sub = parser.add_subparsers(dest="_data_command", metavar="ACTION", required=True)
    stats = sub.add_parser("stats", help="examples and average words per document and summary")
    add_config_arguments(stats, StatsConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.core import console
    from lsr.core.cli_config import config_from_args
    from lsr.core.ray_utils import init_ray
    from lsr.data.io import read_documents
    from lsr.data.stats import corpus_stats

    config = config_from_args(args)
    if config.ray_address:
        init_ray(address=config.ray_address)
    started = None if config.as_json else console.header("data stats", config.path)  # --json prints the JSON only
    ds, report = read_documents(config.path)  # checks the files' columns before it starts a local Ray
    stats = corpus_stats(ds)
    if config.as_json:
        print(json.dumps({**stats.to_dict(), "input": report.to_dict()}, indent=2))
        return 0
    console.summary(started, f"{report.rows_read} rows read from {len(report.files)} file(s)")
    print(f"{'examples':<24}{stats.examples:>10}")
    print(f"{'avg words / document':<24}{stats.avg_document_words:>10.1f}")
    print(f"{'avg words / summary':<24}{stats.avg_summary_words:>10.1f}")
    print(f"{'removed before stats':<24}{sum(report.removed.values()):>10}  {report.removed or ''}".rstrip())
    return 0
