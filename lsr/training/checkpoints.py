"""A run's checkpoints: what one holds, how a worker writes and reads it, and how the driver finds a run.

A checkpoint holds ``model/`` (``save_pretrained`` with the tokenizer), ``state.pt`` (optimizer, scheduler,
step, epoch, batches into the epoch) and ``history.jsonl``. Finding, ranking and restoring runs is Ray Train's
public API (Train V2, Ray's default since 2.5x): :func:`find_run` is ``ray.train.Result.from_path`` (which
reads the run's checkpoint index; a new ``TorchTrainer`` with the same name and storage restores from it), and
the best checkpoint is ``Result.get_best_checkpoint``.

``ray``, ``transformers`` are imported inside the functions that use them, so that importing this module for one of
its functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lsr.core.storage import filesystem
from lsr.data.layout import HISTORY_FILE, MODEL_DIR
from lsr.model.loading import load_trained_student

if TYPE_CHECKING:
    import ray.train

STATE_FILE = "state.pt"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP (or similar) wrapper."""
    return getattr(model, "module", model)


@dataclass
class Progress:
    """Where a run stands: optimizer steps done, epoch, batches of that epoch already trained on."""

    step: int = 0
    epoch: int = 0
    batches_into_epoch: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.epoch, "batches_into_epoch": self.batches_into_epoch}


@dataclass
class Restored:
    """What a worker takes back from a checkpoint."""

    model: Any
    tokenizer: Any
    progress: Progress
    optimizer_state: dict
    scheduler_state: dict
    history: list[dict] = field(default_factory=list)


def save_checkpoint(directory: Path, model, tokenizer, optimizer, scheduler, progress: Progress,
                    history: list[dict]) -> None:
    """Write a checkpoint into ``directory`` (rank 0 only; Ray Train uploads it)."""
    unwrap(model).save_pretrained(directory / MODEL_DIR)
    tokenizer.save_pretrained(directory / MODEL_DIR)
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), **progress.as_dict()},
        directory / STATE_FILE,
    )
    write_history(directory / HISTORY_FILE, history)


def load_checkpoint(checkpoint: ray.train.Checkpoint) -> Restored:
    """The model, tokenizer, counters, optimizer and scheduler states and history of a Ray Train checkpoint."""
    from transformers import AutoTokenizer


    with checkpoint.as_directory() as directory:
        directory = Path(directory)
        model = load_trained_student(directory / MODEL_DIR)  # the MWF student, or a causal LM
        tokenizer = AutoTokenizer.from_pretrained(directory / MODEL_DIR)
        state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=False)
        history = read_history(directory / HISTORY_FILE)
    progress = Progress(**{k: int(state[k]) for k in Progress().as_dict()})
    return Restored(model, tokenizer, progress, state["optimizer"], state["scheduler"], history)


def write_history(path: Path, history: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in history:
            f.write(json.dumps(row) + "\n")


def read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def find_run(storage: str, run_name: str) -> ray.train.Result | None:
    """The result of the run ``run_name`` in ``storage`` (local or s3://), or ``None`` if it has no checkpoint index.

    ``Result.from_path`` refuses (``RuntimeError``) a folder that is missing or holds no checkpoint index: that is
    exactly "nothing to resume".
    """
    import ray.train


    fs, inner = filesystem(f"{storage.rstrip('/')}/{run_name}")
    try:
        return ray.train.Result.from_path(inner, storage_filesystem=fs)
    except RuntimeError:
        return None


def ranking(has_validation: bool) -> tuple[str, str]:
    """The metric checkpoints are ranked by, and its order: validation ROUGE (higher) or training loss (lower)."""
    return ("val_rouge", "max") if has_validation else ("loss", "min")


def best_checkpoint_path(result: ray.train.Result, has_validation: bool) -> str | None:
    """The path of the run's best checkpoint by :func:`ranking` (``None`` when none has the metric)."""
    if not result.best_checkpoints:
        return None
    metric, mode = ranking(has_validation)
    try:
        best = result.get_best_checkpoint(metric, mode)
    except RuntimeError:  # no checkpoint reported the metric
        return None
    return best.path if best is not None else None
