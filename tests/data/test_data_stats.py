"""``lsr data stats``: its options come from a typed config (a positional PATH, ``--json``) like every stage's."""

from __future__ import annotations

import json

import pytest

from lsr.cli.main import main


def test_json_flag_and_positional_path_come_from_the_config(ray_local, xsum_path, capsys):
    assert main(["data", "stats", str(xsum_path), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["examples"] == 40 and figures["input"]["rows_kept"] == 40
    assert main(["data", "stats", "--no-json", str(xsum_path)]) == 0
    lines = capsys.readouterr().out.splitlines()  # a header line first, then the figures
    assert next(line for line in lines if line.startswith("examples")).split() == ["examples", "40"]


def test_the_path_is_required(capsys):
    with pytest.raises(SystemExit):
        main(["data", "stats", "--json"])
    assert "the following arguments are required: PATH" in capsys.readouterr().err
