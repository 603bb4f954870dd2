"""The report's training section: per trained model, its loss curves, gate trajectories and key figures.

Trained models are found, not listed: every folder under the run directory with a ``history.jsonl`` (or a
``train_report.json``), named as the evaluation named its checkpoint (:func:`lsr.report.run_files.trained_models`).
"""

from __future__ import annotations

from pathlib import Path

from lsr.data import layout
from lsr.report import run_files as rf
from lsr.report.markup import Markup, Section, image, join, key_values, missing, paragraph, tag
from lsr.report.plots import plot_gates, plot_training


def _figures(report: dict) -> Markup:
    """The run's settings and last metrics that a reader compares between models."""
    settings = report.get("settings") or {}
    metrics = report.get("metrics") or {}
    views = settings.get("views")
    rows = [
        [
            "objective / views",
            f"{settings.get('objective', '-')} / {', '.join(views) if isinstance(views, list) and views else 'none'}",
        ],
        ["base model", settings.get("model", "-")],
        ["training examples / validation", f"{report.get('examples', '-')} / {report.get('validation_examples', '-')}"],
        ["steps", report.get("steps", "-")],
        ["last loss (mean since the previous checkpoint)", _fixed(metrics.get("loss"), 4)],
        [
            "validation ROUGE-1/2/Lsum x100",
            " / ".join(_fixed(_times100(metrics.get(k)), 2) for k in ("val_rouge1", "val_rouge2", "val_rougeLsum")),
        ],
        ["examples/s per worker", _fixed(metrics.get("examples_per_s"), 1)],
    ]
    return key_values(rows)


def _fixed(value: object, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _times100(value: object) -> object:
    return 100 * value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _model_block(model: rf.TrainedModel) -> Markup:
    folder = model.folder
    title = model.name if model.name == folder.name else f"{model.name} ({folder.name}/)"
    parts: list[Markup] = [tag("h3", title, id=f"training-{folder.name}")]
    try:
        parts.append(_figures(rf.load_json(folder / layout.TRAIN_REPORT)))
    except rf.MissingPart as err:
        parts.append(missing(err))
    try:
        history = rf.load_jsonl(folder / layout.HISTORY_FILE)
    except rf.MissingPart as err:
        parts.append(missing(f"{err}: no loss curve or gates to show"))
        return join(parts)
    loss = plot_training(history, f"{model.name}: loss per step")
    parts.append(
        image(
            loss,
            f"{model.name}: training loss and its parts per step (and validation ROUGE, when measured twice or more)",
        )
        if loss
        else missing(f"{folder / layout.HISTORY_FILE} holds no loss values")
    )
    caption = f"{model.name}: gate value per decoder layer and view over training (the paper's Figure 4)"
    try:
        parts.append(image(rf.load_png(folder / layout.GATES_PNG), caption))
    except rf.MissingPart as err:
        gates = plot_gates(history, f"{model.name}: gates per decoder layer")
        parts.append(
            image(gates, f"{caption} (re-drawn from the history: {err})")
            if gates
            else paragraph("No gates: this model has no rationale views (a plain fine-tuned baseline).", class_="note")
        )
    return join(parts)


def training_section(root: Path) -> Section:
    try:
        evaluated = rf.evaluated_models(rf.load_json(root / layout.RUN_EVAL_DIR / layout.RESULTS_JSON))
    except rf.MissingPart:
        evaluated = []  # folders keep their own names; the evaluation section says what is missing
    models = rf.trained_models(root, evaluated)
    if not models:
        return Section(
            "training",
            "Training",
            missing(
                f"no trained model: no folder under {root} holds {layout.HISTORY_FILE} or {layout.TRAIN_REPORT} "
                "(`lsr train --output RUN/NAME` writes them)"
            ),
        )
    return Section("training", "Training", join(_model_block(m) for m in models))
