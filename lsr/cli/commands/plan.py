"""``lsr plan``: tokens, GPU-hours and wall time of mining the whole input, measured on a sample first.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse

HELP = "estimate mining's tokens, GPU-hours and wall time on a cluster from a sample of the input (no GPU, no Ray)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.core.cli_config import add_config_arguments
    from lsr.mining.planning import PlanConfig

    add_config_arguments(parser, PlanConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.core.cli_config import config_from_args
    from lsr.mining.planning import format_plan, plan

    config = config_from_args(args)
    print(format_plan(plan(config)))
    return 0
