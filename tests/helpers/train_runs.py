"""What the tests of a whole ``lsr train`` run watch for while it runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def wait_for_checkpoint(storage: Path, alive: Callable[[], bool], timeout: float = 240.0) -> None:
    """Poll until Ray Train has *registered* a checkpoint of the run ``train`` in ``storage`` (its checkpoint index
    names one: what a restart restores), not merely a checkpoint folder being uploaded; fail as soon as ``alive()``
    says the run ended first."""
    from lsr.training.checkpoints import find_run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert alive(), "the run ended before any checkpoint was written"
        try:
            found = find_run(str(storage), "train")
        except (OSError, ValueError):  # the index is being written
            found = None
        if found is not None and found.checkpoint is not None:
            return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint in {storage} after {timeout} s")
