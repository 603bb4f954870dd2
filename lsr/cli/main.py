"""The ``lsr`` command: one subcommand per pipeline stage.

Each stage lives in its own module under :mod:`lsr.cli.commands` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``; this file only discovers and dispatches them, so adding a
stage never touches it. Errors the user can fix (:class:`lsr.core.errors.LsrError`) print as one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from lsr import __version__
from lsr.cli import commands
from lsr.core import console
from lsr.core.errors import LsrError
from lsr.core.native_stderr import drop_native_notices

#: The order stages appear in ``lsr --help``; a command module not listed here comes after them.
STAGE_ORDER = ("demo", "data", "mine", "select", "train", "evaluate", "serve", "plan")


def _command_names() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]


def _command_modules() -> list:
    names = _command_names()
    names.sort(key=lambda n: (STAGE_ORDER.index(n) if n in STAGE_ORDER else len(STAGE_ORDER), n))
    return [importlib.import_module(f"lsr.cli.commands.{name}") for name in names]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every stage's parser; with ``only``, the options of that stage alone (the others keep their one-line help):
    a stage's options come from its typed config, which for training imports torch, and ``lsr mine`` should not
    wait a second or more for a library it never uses."""
    parser = argparse.ArgumentParser(
        prog="lsr",
        description="Distil an LLM's summarisation skill into a small model: mine rationales, select, "
        "train the MWF student, evaluate, serve. Every stage runs on a local Ray or a cluster (RAY_ADDRESS).",
    )
    parser.add_argument("--version", action="version", version=f"lsr {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="also show Ray's own logs, the workers' output and library progress bars "
                        "(default: one header, one progress bar and one summary per stage; the rest is in Ray's "
                        "log files). Same as LSR_VERBOSE=1")
    sub = parser.add_subparsers(dest="command", metavar="STAGE", required=True)
    for module in _command_modules():
        name = module.__name__.rsplit(".", 1)[1]
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        if only is not None and name != only:
            continue
        # Also after the stage's name, so `lsr train ... --verbose` and `python ray_jobs/lsr_train.py --verbose` work.
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.set_defaults(_run=module.run)
        module.add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(only=_stage_named(argv) or "").parse_args(argv)
    if args.verbose:
        console.set_verbose(True)
    console.quiet_libraries()
    if not console.verbose():
        drop_native_notices()
    try:
        return int(args._run(args) or 0)
    except LsrError as err:
        print(f"lsr {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lsr {args.command}: interrupted", file=sys.stderr)
        return 130


def _stage_named(argv: Sequence[str]) -> str | None:
    """The stage ``argv`` names (its first word that is not an option; the top-level options take no value). When it
    names none, argparse answers (help, or an error) without any stage's options."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in _command_names() else None


if __name__ == "__main__":
    sys.exit(main())
