"""``lsr evaluate``: generate with one or more models on the same documents and compare them in one table.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse

HELP = "summarise a test split with each --model, score ROUGE-1/2/Lsum and BERTScore, write a Table-2-style report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.core.cli_config import add_config_arguments
    from lsr.evaluation.config import EvaluateConfig

    add_config_arguments(parser, EvaluateConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.core import console
    from lsr.core.cli_config import config_from_args
    from lsr.core.storage import filesystem
    from lsr.data.layout import RESULTS_MD
    from lsr.evaluation.job import evaluate
    from lsr.evaluation.results import model_names

    config = config_from_args(args)
    names = [name for name, _ in model_names(config.models)]
    started = console.header("evaluate", f"{len(names)} model(s) ({', '.join(names)}) on {config.data}"
                             + (", ROUGE and BERTScore" if config.bertscore else ""))
    evaluate(config)  # checks checkpoints, scoring models and the data's columns before it starts Ray
    out = config.output.rstrip("/")
    fs, inner = filesystem(f"{out}/{RESULTS_MD}")
    with fs.open_input_stream(inner) as handle:
        table = handle.read().decode("utf-8")
    console.summary(started, "the table below", wrote=[f"{out}/{RESULTS_MD}", f"{out}/results.json",
                                                        f"{out}/<model>/predictions.parquet"])
    print(table, end="")
    return 0
