"""The paper's Figure 4: how each view's gate moves during training, one line per decoder layer.

``matplotlib`` is imported inside the functions that use it, so that importing this module for one of its
functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsr.model.views import VIEW_REGISTRY, VIEWS

_TITLES = {v.name: v.title for v in VIEW_REGISTRY}


def gate_series(history: Sequence[dict[str, Any]]) -> dict[str, dict[int, tuple[list[int], list[float]]]]:
    """``view -> layer -> (steps, values)`` from history rows holding ``gate/<view>/<layer>`` keys."""
    series: dict[str, dict[int, tuple[list[int], list[float]]]] = {}
    for row in history:
        for key, value in row.items():
            if not key.startswith("gate/"):
                continue
            _, view, layer = key.split("/")
            steps, values = series.setdefault(view, {}).setdefault(int(layer), ([], []))
            steps.append(int(row["step"]))
            values.append(float(value))
    order = {v: i for i, v in enumerate(VIEWS)}
    return dict(sorted(series.items(), key=lambda item: order.get(item[0], len(order))))


def plot_gates(history: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Write the gate trajectories as a PNG (one panel per view); ``None`` when the model has no gates."""
    series = gate_series(history)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.4), sharey=True, squeeze=False)
    for ax, (view, layers) in zip(axes[0], series.items(), strict=True):
        for layer, (steps, values) in sorted(layers.items()):
            ax.plot(steps, values, label=f"layer {layer + 1}", linewidth=1.2)
        ax.set_title(_TITLES.get(view, view))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("gate value")
    axes[0][-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
