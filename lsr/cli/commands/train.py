"""``lsr train``: paper Step 3, train the MWF student (or the plain fine-tuning baseline) on Ray Train.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse
import time

HELP = "train the MWF student (or a plain fine-tuning baseline) on the selected examples with Ray Train"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.core.cli_config import add_config_arguments
    from lsr.training.config import TrainConfig

    add_config_arguments(parser, TrainConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.core import console
    from lsr.core.cli_config import config_from_args
    from lsr.core.storage import join
    from lsr.data.layout import HISTORY_FILE, TRAIN_REPORT
    from lsr.training.trainer import train

    config = config_from_args(args)  # every option checked before Ray starts
    started = time.monotonic()
    outcome = train(config)
    val = {k: v for k, v in outcome.metrics.items() if k.startswith("val_")}
    loss = outcome.metrics.get("loss")
    console.summary(
        started,
        f"trained {outcome.steps} steps"
        + (f", mean loss {loss:.3f} since the previous checkpoint" if isinstance(loss, float) else "")
        + (f"; validation {', '.join(f'{k} {v:.4f}' for k, v in val.items())}" if val else ""),
        wrote=[outcome.model_dir, outcome.gate_plot, join(outcome.output, HISTORY_FILE),
               join(outcome.output, TRAIN_REPORT)],
    )
    return 0
