"""``lsr select``: paper Step 2, keep the mined examples whose generated summaries agree with the gold one.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse

HELP = "score mined rationales with ROUGE (Score1/Score2) and split them into kept/ and rejected/ with a report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.core.cli_config import add_config_arguments
    from lsr.selection.config import SelectConfig

    add_config_arguments(parser, SelectConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.core import console
    from lsr.core.cli_config import config_from_args
    from lsr.core.ray_utils import init_ray
    from lsr.core.storage import join
    from lsr.data.layout import KEPT, REJECTED, SCORES_PNG, SELECTION_REPORT_MD
    from lsr.selection.job import run_selection

    config = config_from_args(args)  # every option checked before Ray starts
    rule = config.selection
    started = console.header("select", f"{config.input} -> {config.output}, keep {rule.score} <= {rule.threshold} "
                             f"on the {rule.score_on} summaries")
    init_ray(address=config.ray_address)
    out = config.output
    # Rows land in kept/ and rejected/ once scored; their sum is the pairs scored so far.
    seen: dict = {}
    with console.Progress("pairs scored") as bar, console.Poll(
        bar, lambda: console.parquet_rows(join(out, KEPT), seen) + console.parquet_rows(join(out, REJECTED), seen)
    ):
        result = run_selection(config.input, config.output, rule, dataset=config.dataset, force=config.force,
                               overwrite=config.overwrite)
    console.summary(started, result.summary_line(), wrote=[join(out, name) for name in
                                                           (KEPT, REJECTED, SELECTION_REPORT_MD, SCORES_PNG)])
    for flag in result.report.get("split_guard_overridden") or []:
        console.warn(f"--force filtered an input that looks held out ({flag}); only training data should be")
    return 0
