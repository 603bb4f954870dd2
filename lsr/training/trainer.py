"""Ray Train wiring: data in, ``TorchTrainer`` with checkpoints and retries, final model and gate plot out.

Output folder of a run::

    OUTPUT/checkpoints/<run_name>/   Ray Train storage (unless --storage-path): the best N checkpoints + latest
    OUTPUT/model/                    the final model, save_pretrained format, with its tokenizer
    OUTPUT/history.jsonl             one row per optimizer step: loss and parts, lr, grad norm, every gate;
                                     plus one row per validation (val_rouge1/2/Lsum)
    OUTPUT/gates.png                 gate trajectories per layer and view (the paper's Figure 4)
    OUTPUT/train_report.json         settings, data counts, steps, last metrics, checkpoint paths
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsr.errors import InputError
from lsr.train.loop import HISTORY_FILE, MODEL_DIR, train_loop_per_worker
from lsr.train.settings import TrainSettings

CHECKPOINT_FOLDER = "checkpoints"
REPORT_FILE = "train_report.json"
GATES_PNG = "gates.png"
SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"


@dataclass
class TrainOutcome:
    output: Path
    model_dir: Path
    steps: int
    metrics: dict[str, Any]
    best_checkpoint: str | None
    latest_checkpoint: str | None
    gate_plot: Path | None


def storage_path(settings: TrainSettings) -> str:
    """Where Ray Train keeps checkpoints: ``--storage-path`` (local or s3://) or ``OUTPUT/checkpoints``."""
    if settings.storage_path:
        return settings.storage_path
    return str((Path(settings.output) / CHECKPOINT_FOLDER).resolve())


def run_exists(storage: str, run_name: str) -> bool:
    """Whether a run's checkpoint-manager snapshot (what ``--resume`` restores from) exists in ``storage``."""
    import pyarrow.fs as pafs

    uri = f"{storage.rstrip('/')}/{run_name}/{SNAPSHOT_FILE}"
    fs, inner = pafs.FileSystem.from_uri(uri) if "://" in uri else (pafs.LocalFileSystem(), uri)
    return fs.get_file_info(inner).type == pafs.FileType.File


def steps_for(settings: TrainSettings, rows: int) -> int:
    """Total optimizer steps: ``--max-steps``, or ``--epochs`` over each worker's equal share of ``rows``."""
    if settings.max_steps is not None:
        return settings.max_steps
    per_worker = rows // settings.workers
    batches = math.ceil(per_worker / settings.batch_size)
    return max(1, settings.epochs * batches // settings.grad_accum)


def validation_rows(settings: TrainSettings) -> list[dict[str, str]]:
    """The first ``--validation-size`` rows of the unfiltered validation documents, or none."""
    if not settings.validation:
        return []
    from lsr.io import read_documents

    ds, _ = read_documents(settings.validation)
    rows = ds.limit(settings.validation_size).to_pandas()
    return [{"id": str(r.id), "document": str(r.document), "summary": str(r.summary)} for r in rows.itertuples()]


def _tokenizer_for(settings: TrainSettings):
    """The tokenizer the run's model uses, without building the model (the driver only tokenises)."""
    from lsr.presets import TINY, tiny_tokenizer

    if settings.model == TINY:
        return tiny_tokenizer()
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(settings.model)
        tokenizer = AutoTokenizer.from_pretrained(settings.model)
    except (OSError, ValueError, TypeError) as err:
        raise InputError(
            f"--model {settings.model!r} is not a BART checkpoint ({str(err).splitlines()[0]}); give 'tiny' or a "
            "directory holding a BART model in save_pretrained format"
        ) from None
    if config.model_type not in ("bart", "gated_bart"):
        raise InputError(f"--model {settings.model!r} is a {config.model_type!r} checkpoint, not BART")
    return tokenizer


def build_trainer(settings: TrainSettings, train_ds, total_steps: int, val_rows: list[dict[str, str]]):
    """The ``TorchTrainer`` of a run: workers, DDP backend, checkpoint policy, failure policy, storage."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    score, order = ("val_rouge", "max") if val_rows else ("loss", "min")
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"settings": settings.to_dict(), "total_steps": total_steps, "validation_rows": val_rows},
        # gloo on CPU, NCCL on GPU (Ray's default picks the same; said here so nobody has to look it up).
        torch_config=TorchConfig(backend="nccl" if settings.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=settings.workers,
            use_gpu=settings.use_gpu,
            resources_per_worker=None if settings.use_gpu else {"CPU": settings.cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=settings.run_name,
            storage_path=storage_path(settings),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=settings.keep_checkpoints,
                checkpoint_score_attribute=score,
                checkpoint_score_order=order,
            ),
            failure_config=ray.train.FailureConfig(max_failures=settings.max_failures),
        ),
        datasets={"train": train_ds},
    )


def train(settings: TrainSettings) -> TrainOutcome:
    """Run (or resume) a training run end to end; see the module docstring for what it writes."""
    from lsr.ray_utils import init_ray
    from lsr.train.data import read_training_rows, tokenize_dataset

    settings = settings.resolved()
    storage = storage_path(settings)
    exists = run_exists(storage, settings.run_name)
    if exists and not settings.resume:
        raise InputError(
            f"a run named {settings.run_name!r} already exists in {storage}; pass --resume to continue it, "
            "or choose another --output / --run-name"
        )
    if settings.resume and not exists:
        raise InputError(f"--resume: no run named {settings.run_name!r} in {storage} to resume")
    tokenizer = _tokenizer_for(settings)

    init_ray()
    rows, count, failed = read_training_rows(settings.data, settings.views)
    if count < settings.workers:
        raise InputError(f"{count} training example(s) for {settings.workers} workers; use at most {count} workers")
    train_ds = tokenize_dataset(
        rows,
        tokenizer,
        views=settings.views,
        source_max_tokens=settings.source_max_tokens,
        target_max_tokens=settings.target_max_tokens,
        rationale_max_tokens=settings.rationale_max_tokens,
    ).materialize()  # tokenise once, before the workers take every CPU (a small cluster would starve Ray Data)
    total_steps = steps_for(settings, count)
    val_rows = validation_rows(settings)
    print(
        f"[lsr train] {count} training examples ({failed} with a mining error left out), {settings.workers} "
        f"worker(s), {total_steps} steps, objective {settings.objective}, views {','.join(settings.views) or 'none'}",
        flush=True,
    )
    trainer = build_trainer(settings, train_ds, total_steps, val_rows)
    result = trainer.fit()
    if result.error:
        raise result.error
    outcome = export(settings, result, total_steps)
    (outcome.output / REPORT_FILE).write_text(
        json.dumps(
            {
                "settings": settings.to_dict(),
                "examples": count,
                "left_out_with_error": failed,
                "validation_examples": len(val_rows),
                "steps": outcome.steps,
                "metrics": outcome.metrics,
                "model": str(outcome.model_dir),
                "best_checkpoint": outcome.best_checkpoint,
                "latest_checkpoint": outcome.latest_checkpoint,
                "gate_plot": str(outcome.gate_plot) if outcome.gate_plot else None,
            },
            indent=2,
            default=str,
        )
        + "\n",
        encoding="utf-8",
    )
    return outcome


def best_checkpoint(checkpoints: list, attribute: str) -> str | None:
    """The path of the best ``(checkpoint, metrics)`` by ``attribute`` (higher ROUGE, or lower loss, is better)."""
    scored = [(m[attribute], c.path) for c, m in checkpoints if isinstance(m.get(attribute), (int, float))]
    if not scored:
        return None
    pick = max if attribute.startswith("val_") else min
    return pick(scored, key=lambda item: item[0])[1]


def export(settings: TrainSettings, result, total_steps: int) -> TrainOutcome:
    """Copy the last checkpoint's model and history into OUTPUT and draw the gate plot."""
    from lsr.train.gates_plot import plot_gates

    output = Path(settings.output)
    output.mkdir(parents=True, exist_ok=True)
    if result.checkpoint is None:
        raise RuntimeError("training ended without a checkpoint")
    model_dir = output / MODEL_DIR
    with result.checkpoint.as_directory() as directory:
        if model_dir.exists():
            shutil.rmtree(model_dir)
        shutil.copytree(Path(directory) / MODEL_DIR, model_dir)
        shutil.copyfile(Path(directory) / HISTORY_FILE, output / HISTORY_FILE)
    history = [json.loads(line) for line in (output / HISTORY_FILE).read_text().splitlines() if line.strip()]
    gate_plot = plot_gates(history, output / GATES_PNG, title=f"{settings.dataset}: gates per decoder layer")
    best = best_checkpoint(result.best_checkpoints or [], "val_rouge" if settings.validation else "loss")
    steps = max((row["step"] for row in history), default=0)
    return TrainOutcome(
        output=output,
        model_dir=model_dir,
        steps=steps,
        metrics={k: v for k, v in (result.metrics or {}).items() if isinstance(v, (int, float, str))},
        best_checkpoint=best,
        latest_checkpoint=result.checkpoint.path,
        gate_plot=gate_plot,
    )
