"""``lsr mine``: paper Step 1, structured rationales and LLM summaries for every document (resumable)."""

from __future__ import annotations

import argparse

HELP = "mine rationales and summaries with an LLM (vllm, http) or the extractive oracle; resumable, nothing lost"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.cli_config import add_config_arguments
    from lsr.mining.config import MineConfig

    add_config_arguments(parser, MineConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.cli_config import config_from_args
    from lsr.mining.pipeline import run_mining
    from lsr.ray_utils import init_ray

    config = config_from_args(args)  # every option checked before Ray starts
    init_ray(address=config.ray_address)
    report = run_mining(config)
    print(report.summary_line())
    return 0 if report.complete else 1
