"""The README's commands are the ones CI and users actually run."""

from __future__ import annotations

import re

from conftest import REPO


def _fenced_after(text: str, heading: str) -> str:
    match = re.search(re.escape(heading) + r"\s*```bash\n(.+?)\n```", text, re.S)
    assert match, f"README.md has no bash block after {heading!r}"
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    command = _fenced_after(readme, "Run the tests:")
    ci = (REPO / ".ci" / "run").read_text()
    assert command in ci.splitlines()


def test_cli_lists_the_stages():
    from lsr.cli import build_parser

    help_text = build_parser().format_help()
    assert "data" in help_text
