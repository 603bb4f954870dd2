"""The ``lsr`` command line: one subcommand per stage (:mod:`lsr.cli.commands`), the demo and the Table 2 recipe."""

from lsr.cli.main import main

__all__ = ["main"]
