"""Fixtures of the mining tests (lsr.mining)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def subset() -> Callable[[Path, int, Path], list[dict]]:
    """``subset(src, n, dest)``: the first ``n`` rows of the JSON-lines file ``src``, written to ``dest``."""

    def copy(src: Path, n: int, dest: Path) -> list[dict]:
        rows = [json.loads(line) for line in src.read_text().splitlines()[:n]]
        dest.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return rows

    return copy
