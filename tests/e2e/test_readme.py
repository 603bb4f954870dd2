"""The README's commands are the ones CI and users actually run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.paths import REPO


def _fenced_after(text: str, heading: str) -> str:
    """The first bash block after ``heading``."""
    match = re.search(re.escape(heading) + r".*?```bash\n(.+?)\n```", text, re.S)
    assert match, f"README.md has no bash block after {heading!r}"
    return match.group(1).strip()


#: Where each of the README's two commands is: the first bash block after these words.
README_COMMANDS = {"main": "## Quick start", "test": "Run the tests:"}


@pytest.mark.parametrize("which", sorted(README_COMMANDS))
def test_ci_runs_the_readme_command_verbatim(which):
    readme = (REPO / "README.md").read_text()
    command = _fenced_after(readme, README_COMMANDS[which])
    ci = (REPO / ".ci" / "run").read_text()
    assert command in ci.splitlines(), f".ci/run does not run the README's {which} command as written"


def test_ci_runs_the_demo_before_the_tests():
    readme = (REPO / "README.md").read_text()
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    main, test = (lines.index(_fenced_after(readme, README_COMMANDS[k])) for k in ("main", "test"))
    assert main < test
    assert lines[main].endswith("lsr demo")


def _fake_tools(bin_dir: Path) -> None:
    """Stand-ins for python3/python/pip/lsr: venv makes an activate script, the rest exit with $FAKE_*_RC."""
    script = {
        "python3": 'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && : > "$3/bin/activate"; exit 0; fi\n'
        'if [ "$1 $2" = "-m pytest" ]; then exit "$FAKE_PYTEST_RC"; fi\nexit 0',
        "pip": "exit 0",
        "lsr": 'exit "$FAKE_DEMO_RC"',
    }
    script["python"] = script["python3"]
    for name, body in script.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)


@pytest.mark.parametrize(
    "demo_rc,pytest_rc,expect_ok",
    [(0, 0, True), (1, 0, False), (0, 1, False), (0, 5, False), (2, 5, False)],
)
def test_ci_fails_when_either_command_fails(tmp_path, demo_rc, pytest_rc, expect_ok):
    """.ci/run run for real, with the tools it calls replaced: its exit status follows both commands."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "run", tmp_path / ".ci" / "run")
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    _fake_tools(bin_dir)
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "FAKE_DEMO_RC": str(demo_rc),
           "FAKE_PYTEST_RC": str(pytest_rc)}  # fmt: skip
    done = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], env=env, capture_output=True, text=True)
    assert (done.returncode == 0) == expect_ok, done.stderr
    if pytest_rc == 5:
        assert "collected no tests" in done.stderr
    if demo_rc:
        assert "lsr demo" in done.stderr


def test_cli_lists_the_stages():
    from lsr.cli.main import build_parser

    help_text = build_parser().format_help()
    for stage in ("demo", "data", "mine", "select", "train", "evaluate"):
        assert f"    {stage}" in help_text, stage


def test_demo_holds_out_test_documents_deterministically(tmp_path):
    from lsr.cli.commands.demo import SAMPLES, split_sample

    train, test = split_sample(SAMPLES / "cnndm_sample.jsonl", tmp_path / "a", test_size=8)
    train2, test2 = split_sample(SAMPLES / "cnndm_sample.jsonl", tmp_path / "b", test_size=8)
    train_lines, test_lines = train.read_text().splitlines(), test.read_text().splitlines()
    assert len(test_lines) == 8 and len(train_lines) == 32
    assert not set(train_lines) & set(test_lines)
    assert (train_lines, test_lines) == (train2.read_text().splitlines(), test2.read_text().splitlines())
