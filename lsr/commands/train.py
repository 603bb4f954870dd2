"""``lsr train``: paper Step 3, train the MWF student (or the plain fine-tuning baseline) on Ray Train."""

from __future__ import annotations

import argparse

HELP = "train the MWF student (or a plain fine-tuning baseline) on the selected examples with Ray Train"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.cli_config import add_config_arguments
    from lsr.training.config import TrainConfig

    add_config_arguments(parser, TrainConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.cli_config import config_from_args
    from lsr.training.trainer import train

    config = config_from_args(args)  # every option checked before Ray starts
    outcome = train(config)
    val = {k: v for k, v in outcome.metrics.items() if k.startswith("val_")}
    print(f"trained {outcome.steps} steps; model: {outcome.model_dir}; gates: {outcome.gate_plot or 'none (no views)'}"
          + (f"; validation {', '.join(f'{k} {v:.4f}' for k, v in val.items())}" if val else ""))
    return 0
