"""``lsr mine``: paper Step 1, structured rationales and LLM summaries for every document (resumable).

Exit status: 0 when every row succeeded; 3 when some rows failed (the report counts them by reason; run again to
retry the transient ones); 4 when every row failed (one line says why); 1 when ids are missing from the output;
2 for a user error; 130/143 when stopped by SIGINT/SIGTERM after saving the rows already finished.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse
import signal
import sys

HELP = "mine rationales and summaries with an LLM (vllm, http) or the extractive oracle; resumable, nothing lost"

EXIT_CODES = {"ok": 0, "incomplete": 1, "some_failed": 3, "all_failed": 4}


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so the job saves what it has on the way out."""

    signal_name = "SIGTERM"


def _on_sigterm(signum, frame):
    raise Terminated()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lsr.core.cli_config import add_config_arguments
    from lsr.mining.config import MineConfig

    add_config_arguments(parser, MineConfig)


def run(args: argparse.Namespace) -> int:
    from lsr.core import console
    from lsr.core.cli_config import config_from_args
    from lsr.core.ray_utils import init_ray
    from lsr.data.layout import mining_report_paths
    from lsr.mining.pipeline import Interrupted, prepare, run_mining

    config = config_from_args(args)  # every option checked before Ray starts
    prepared = prepare(config)  # the input's rows (ids kept), the output folder and its lock: still no Ray
    started = console.header(
        "mine", f"{config.input} -> {config.output}, engine {config.engine.kind}, dataset {config.dataset}"
        + (f", first {config.limit} documents" if config.limit else "")
    )
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        init_ray(address=config.ray_address)
        signal.signal(signal.SIGTERM, _on_sigterm)  # again: ray.init installs its own (a bare exit) on the driver
        # The rows already written to the output folder: what a kill would keep (and a resumed run would skip).
        seen: dict = {}
        with console.Progress("documents mined") as bar, console.Poll(
            bar, lambda: console.parquet_rows(config.output, seen)
        ):
            report = run_mining(config, prepared)
    except Interrupted as stop:
        print(f"lsr mine: {stop}", file=sys.stderr)
        return 143 if stop.signal_name == "SIGTERM" else 130
    except KeyboardInterrupt as stop:  # before any row was pulled (e.g. while Ray starts)
        prepared.output.release()
        name = getattr(stop, "signal_name", "SIGINT")
        print(f"lsr mine: stopped by {name} before mining began; nothing new saved in {config.output}; "
              "run the same command again to resume", file=sys.stderr)
        return 143 if name == "SIGTERM" else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.summary(started, report.summary_line(), wrote=[config.output, *mining_report_paths(config.output)])
    if report.outcome == "all_failed":
        print(f"lsr mine: error: {report.failure_line()}", file=sys.stderr)
    elif report.outcome != "ok":
        console.warn("some rows failed or are missing (see the report); run the same command again to retry them")
    return EXIT_CODES[report.outcome]
