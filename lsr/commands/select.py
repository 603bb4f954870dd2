"""``lsr select``: paper Step 2, keep the mined examples whose generated summaries agree with the gold one."""

from __future__ import annotations

import argparse

HELP = "score mined rationales with ROUGE (Score1/Score2) and split them into kept/ and rejected/ with a report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.cli_config import add_config_arguments
    from lsr.selection.config import SelectConfig

    add_config_arguments(parser, SelectConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.cli_config import config_from_args
    from lsr.ray_utils import init_ray
    from lsr.selection.job import run_selection

    config = config_from_args(args)  # every option checked before Ray starts
    init_ray(address=config.ray_address)
    result = run_selection(config.input, config.output, config.selection, dataset=config.dataset, force=config.force,
                           overwrite=config.overwrite)
    print(result.summary_line())
    return 0
