"""The report's own plots, as PNG bytes: a trained model's loss curves, its gate trajectories, the cluster under mining.

The training stage draws ``gates.png`` itself; the report re-plots the gates from ``history.jsonl`` only when
that file is gone, with the same series (:func:`lsr.training.gates_plot.gate_series`), so both look alike.

``matplotlib`` and the lsr modules that need them are imported inside the functions that use them, so that importing
this module for one of its functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Validation rows carry these keys (x1, in [0, 1]); shown x100 like the results table.
VALIDATION_KEYS = ("val_rouge1", "val_rouge2", "val_rougeLsum")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(int(r["step"]), float(r[key])) for r in history if isinstance(r.get(key), (int, float)) and "step" in r]
    return [s for s, _ in points], [v for _, v in points]


def loss_keys(history: Sequence[dict[str, Any]]) -> list[str]:
    """``loss`` first, then its named parts (``loss/ce``, ``loss/align_ea``, ...) in the order they appear."""
    keys = dict.fromkeys(k for row in history for k in row if k == "loss" or k.startswith("loss/"))
    return sorted(keys, key=lambda k: k != "loss")


def plot_training(history: Sequence[dict[str, Any]], title: str) -> bytes | None:
    """Loss and its parts per step, and validation ROUGE when it was measured more than once; ``None`` when
    nothing was logged."""
    losses = loss_keys(history)
    # One validation (at the end, as short runs have) is a single dot: the figures table shows it better.
    validation = [k for k in VALIDATION_KEYS if len(_series(history, k)[0]) > 1]
    if not losses and not validation:
        return None
    plt = _pyplot()
    panels = [p for p in (losses, validation) if p]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 3.6), squeeze=False)
    try:
        for ax, keys in zip(axes[0], panels, strict=True):
            for key in keys:
                steps, values = _series(history, key)
                scale = 100.0 if key in VALIDATION_KEYS else 1.0
                ax.plot(
                    steps,
                    [scale * v for v in values],
                    marker="o" if len(steps) <= 12 else None,
                    markersize=3,
                    linewidth=2.0 if key == "loss" else 1.2,
                    label=key.removeprefix("val_").replace("loss/", "") if key != "loss" else "loss (total)",
                )
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="best")
            is_validation = keys is validation
            ax.set_ylabel("ROUGE F1 x100" if is_validation else "loss")
            ax.set_title("validation" if is_validation else "training loss")
        figure.suptitle(title)
        figure.tight_layout()
        return _png(figure)
    finally:
        plt.close(figure)


def plot_gates(history: Sequence[dict[str, Any]], title: str) -> bytes | None:
    """The gate trajectories, drawn by the training stage's own plot; ``None`` for a model without gates."""
    from lsr.training.gates_plot import plot_gates as draw

    with tempfile.TemporaryDirectory() as tmp:
        path = draw(history, Path(tmp) / "gates.png", title=title)
        return path.read_bytes() if path else None


def plot_cluster(samples: Sequence[dict[str, Any]], title: str) -> bytes | None:
    """Alive nodes and mining replicas over a mining run, as steps (each sample holds until the next); ``None`` when
    fewer than two samples were kept (a run on a steady cluster shows no line worth drawing)."""
    points = [s for s in samples if isinstance(s.get("t"), (int, float))]
    if len(points) < 2:
        return None
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6.4, 3.2))
    try:
        times = [float(s["t"]) for s in points]
        for key, label in (("nodes", "alive nodes"), ("replicas", "mining replicas")):
            values = [s.get(key) for s in points]
            if any(isinstance(v, int) for v in values):
                ax.step(times, [v if isinstance(v, int) else float("nan") for v in values], where="post", label=label)
        ax.set_xlabel("seconds since the run started")
        ax.set_ylabel("count")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        ax.set_title(title)
        figure.tight_layout()
        return _png(figure)
    finally:
        plt.close(figure)
