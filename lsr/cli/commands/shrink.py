"""``lsr shrink``: shrink-and-fine-tune's initialisation, a BART student from alternating teacher layers.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse

HELP = "initialise a smaller BART student by copying alternating layers of a BART teacher (distilbart's 12-6)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.core.cli_config import add_config_arguments
    from lsr.kd.shrink import ShrinkConfig

    add_config_arguments(parser, ShrinkConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.core.cli_config import config_from_args
    from lsr.kd.shrink import shrink_bart

    config = config_from_args(args)
    maps = shrink_bart(config.teacher, config.output, config.encoder_layers, config.decoder_layers)
    for stack, layers in maps.items():
        print(f"{stack}: student layer i <- teacher layer {layers}")
    print(f"{config.output}: student written (the map is in its config.json under shrink_map)")
    return 0
