"""``lsr teacher``: the offline logit-KD teacher pass (top-k log-probs per summary token, once, on Ray Data).

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse

HELP = "score the training set with a KD teacher once and store its top-k log-probs per summary token (Parquet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.core.cli_config import add_config_arguments
    from lsr.kd.teacher_pass import TeacherPassConfig

    add_config_arguments(parser, TeacherPassConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.core.cli_config import config_from_args
    from lsr.kd.teacher_pass import run_teacher_pass, summary_line

    config = config_from_args(args)  # every option checked before Ray starts
    print(summary_line(run_teacher_pass(config)))
    return 0
