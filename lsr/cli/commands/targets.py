"""``lsr targets``: the target pass on its own, encode every training row's views once with the fixed encoder.

``lsr train`` runs it when the stored targets are missing; running it first (e.g. on a GPU pool with
``--target-actors N --gpu``) lets training start on stored vectors.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse
import functools
from typing import Annotated

from pydantic import Field

from lsr.core.cli_config import Flag
from lsr.core.config import StageConfig

HELP = "encode the MWF alignment targets of the training rows once (the fixed initial encoder), for lsr train"


@functools.cache
def targets_config() -> type[StageConfig]:
    """The command's config class, built on first use: its base :class:`TargetOptions` lives next to the encoding
    code (torch), which ``lsr --help`` and the other stages should not have to import."""
    from lsr.training.targets import TargetOptions

    class TargetsConfig(TargetOptions, StageConfig):
        """The target pass: which rows, which encoder (the run's initial checkpoint and seed), where to store."""

        data: str = Field(description="the selection output (its kept/ folder is used) or Parquet files with "
                          "rationale columns")
        checkpoint: Annotated[str, Flag(name="--model", metavar="tiny|PATH")] = Field(
            default="tiny", description="the initial checkpoint whose encoder encodes the targets (as lsr train "
            "--model)"
        )
        seed: int = Field(default=0, description="the tiny model's initialisation seed (as lsr train --seed)")
        use_gpu: Annotated[bool, Flag(name="--gpu")] = Field(default=False, description="one GPU per encoder actor")

    return TargetsConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.core.cli_config import add_config_arguments

    add_config_arguments(parser, targets_config())


def run(args: argparse.Namespace) -> int:
    from lsr.core.cli_config import config_from_args
    from lsr.core.errors import InputError
    from lsr.core.ray_utils import init_ray
    from lsr.model.loading import CAUSAL, student_family
    from lsr.model.views import VIEWS
    from lsr.training.data import read_training_rows
    from lsr.training.target_pass import ensure_targets

    config = config_from_args(args)  # every option checked before Ray starts
    if student_family(config.checkpoint) == CAUSAL:
        raise InputError(f"--model {config.checkpoint!r} is a causal LM: alignment targets are encoded by a BART "
                         "student's encoder (MWF), which a decoder-only model does not have")
    init_ray(address=config.ray_address)
    rows, count, failed = read_training_rows(config.data, VIEWS)
    _, targets = ensure_targets(rows, config.data, config.checkpoint, config.seed, config, config.use_gpu)
    state = "reused" if targets.reused else f"encoded in {targets.seconds:.1f}s ({targets.rows_per_s:.1f} rows/s)"
    print(f"targets for {targets.rows} rows ({failed} with a mining error left out) {state}: {targets.path}; "
          f"empty views {targets.empty}; truncated texts {targets.truncated}")
    return 0
