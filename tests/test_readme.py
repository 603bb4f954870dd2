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
    for stage in ("demo", "data", "mine", "select", "train", "evaluate"):
        assert f"    {stage}" in help_text, stage


def test_demo_holds_out_test_documents_deterministically(tmp_path):
    from lsr.commands.demo import SAMPLES, split_sample

    train, test = split_sample(SAMPLES / "cnndm_sample.jsonl", tmp_path / "a", test_size=8)
    train2, test2 = split_sample(SAMPLES / "cnndm_sample.jsonl", tmp_path / "b", test_size=8)
    train_lines, test_lines = train.read_text().splitlines(), test.read_text().splitlines()
    assert len(test_lines) == 8 and len(train_lines) == 32
    assert not set(train_lines) & set(test_lines)
    assert (train_lines, test_lines) == (train2.read_text().splitlines(), test2.read_text().splitlines())
