"""The `ray job submit` entrypoints start, and none of their names can shadow a module they import.

Python puts a script's own folder first on ``sys.path``, so a ``ray_jobs/select.py`` would replace the standard
library's ``select`` for every script there and each one would crash at start. Running them as a user does (a
subprocess, ``--help``) is the only check that catches that.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.helpers.paths import REPO

RAY_JOBS = REPO / "ray_jobs"
SCRIPTS = sorted(RAY_JOBS.glob("*.py"))


def test_there_is_an_entrypoint_per_pipeline_stage():
    assert {p.stem for p in SCRIPTS} >= {"lsr_mine", "lsr_select", "lsr_train", "lsr_evaluate"}


def _lsr_commands() -> set[str]:
    from lsr.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_entrypoint_starts_and_prints_its_usage(script):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    stage = script.stem.removeprefix("lsr_")
    # A stage's twin prints `lsr STAGE`'s usage; the pipeline recipe (no `lsr` twin) its own.
    prog = f"lsr {stage}" if stage in _lsr_commands() else f"ray_jobs/{script.name}"
    assert done.stdout.startswith(f"usage: {prog} "), done.stdout[:200]
    assert "--help" in done.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_entrypoint_name_shadows_no_module(script):
    name = script.stem
    assert name not in sys.stdlib_module_names, f"ray_jobs/{script.name} shadows the standard library's {name}"
    assert name not in sys.builtin_module_names
    spec = importlib.util.find_spec(name)  # ray_jobs/ is not on this process's path: any hit is another module
    assert spec is None, f"ray_jobs/{script.name} shadows the installed module {name} ({spec.origin})"


BENCHES = sorted((REPO / "bench").glob("bench_*.py"))


@pytest.mark.parametrize("script", BENCHES, ids=[p.name for p in BENCHES])
def test_benchmark_starts_and_its_lsr_imports_resolve(script):
    """A benchmark is not run in CI, so an API it uses can move without a test noticing: check it still starts and
    every ``lsr`` name it imports (at the top or inside a function) still exists."""
    import ast
    import importlib

    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=REPO,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lsr"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{script.name}: {node.module}.{alias.name} no longer exists"
