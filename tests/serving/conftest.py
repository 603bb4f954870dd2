"""Fixtures of the serving tests: the tiny served checkpoint. (The multi-node serving test runs on the shared
``loopback_cluster`` of ``tests/conftest.py``.)"""

from __future__ import annotations

import pytest

from tests.helpers.tiny_student import save_tiny_student


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """A tiny MWF student saved as ``lsr train`` lays a run out: RUN/model plus RUN/train_report.json."""
    report = {"settings": {"dataset": "xsum", "objective": "mwf"}, "steps": 7, "metrics": {"loss": 1.5}}
    return save_tiny_student(tmp_path_factory.mktemp("runs") / "tiny-run", seed=2, report=report, mwf_gate_init=0.3)
