"""Ray Train wiring: data in, ``TorchTrainer`` with checkpoints and retries, final model and gate plot out.

Output folder of a run::

    OUTPUT/checkpoints/<run_name>/   Ray Train storage (unless --storage-path): the best N checkpoints + latest
    OUTPUT/model/                    the final model, save_pretrained format, with its tokenizer
    OUTPUT/history.jsonl             one row per optimizer step: loss and parts, lr, grad norm, every gate;
                                     plus one row per validation (val_rouge1/2/Lsum)
    OUTPUT/gates.png                 gate trajectories per layer and view (the paper's Figure 4)
    OUTPUT/train_report.json         config, data counts, the alignment targets used (with their empty and
                                     truncated counts per view), steps, last metrics, checkpoint paths, the
                                     restarts after lost workers and the steps they made train twice

OUTPUT and ``--storage-path`` may be ``s3://`` URIs (:mod:`lsr.core.storage`): the checkpoints go straight to the
bucket through Ray Train's storage filesystem, and the exported files are written to a local staging folder and
uploaded once the run has finished.

``ray`` and the lsr modules that need them are imported inside the functions that use them, so that importing this
module for one of its functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsr.core import console
from lsr.core.errors import InputError
from lsr.core.ray_utils import init_ray
from lsr.core.storage import filesystem, is_remote, join, staged_folder
from lsr.data.io import read_documents
from lsr.data.layout import GATES_PNG, TRAIN_REPORT
from lsr.model.loading import load_tokenizer
from lsr.model.views import VIEWS
from lsr.training.checkpoints import HISTORY_FILE, MODEL_DIR, best_checkpoint_path, find_run, ranking, read_history
from lsr.training.config import TrainConfig
from lsr.training.loop import train_loop_per_worker


@dataclass
class TrainOutcome:
    """Where a run's files are, as paths or URIs in OUTPUT (local or s3://), its steps and last metrics."""

    output: str
    model_dir: str
    steps: int
    metrics: dict[str, Any]
    best_checkpoint: str | None
    latest_checkpoint: str | None
    gate_plot: str | None


def steps_for(config: TrainConfig, rows: int) -> int:
    """Total optimizer steps: ``--max-steps``, or ``--epochs`` over each worker's equal share of ``rows``."""
    if config.max_steps is not None:
        return config.max_steps
    per_worker = rows // config.workers
    batches = math.ceil(per_worker / config.batch_size)
    return max(1, config.epochs * batches // config.grad_accum)


def validation_rows(config: TrainConfig) -> list[dict[str, str]]:
    """The first ``--validation-size`` rows of the unfiltered validation documents, or none."""
    if not config.validation:
        return []

    ds, _ = read_documents(config.validation, limit=config.validation_size)
    rows = ds.to_pandas()
    return [{"id": str(r.id), "document": str(r.document), "summary": str(r.summary)} for r in rows.itertuples()]


def check_run_name(config: TrainConfig) -> None:
    """A new run must not overwrite an old one, and ``--resume`` needs one (Ray Train's own run index decides)."""
    storage = config.storage()
    exists = find_run(storage, config.run_name) is not None
    if exists and not config.resume:
        raise InputError(
            f"a run named {config.run_name!r} already exists in {storage}; pass --resume to continue it, "
            "or choose another --output / --run-name"
        )
    if config.resume and not exists:
        raise InputError(f"--resume: no run named {config.run_name!r} in {storage} to resume")


def scaling_config(config: TrainConfig):
    """The workers: ``--workers`` of one GPU (``--gpu``) or ``cpus_per_worker`` CPUs each; ``--accelerator-type``
    adds Ray's ``accelerator_type:<GPU>`` resource to each worker, which only nodes with
    that GPU offer (``cluster.yaml`` declares it per GPU node type)."""
    import ray.train

    return ray.train.ScalingConfig(
        num_workers=config.workers,
        use_gpu=config.use_gpu,
        resources_per_worker=None if config.use_gpu else {"CPU": config.cpus_per_worker},
        accelerator_type=config.accelerator_type,
    )


def build_trainer(
    config: TrainConfig, train_ds, total_steps: int, val_rows: list[dict[str, str]], callbacks: list | None = None
):
    """The ``TorchTrainer`` of a run: workers, DDP backend, checkpoint policy, failure policy, storage.

    A trainer with the name and storage of an earlier run restores that run's latest checkpoint (Ray Train V2).
    ``callbacks`` (``ray.train.UserCallback``) run on Ray Train's controller after every report, e.g. the driver's
    progress bar (:mod:`lsr.training.progress`).
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer


    score, order = ranking(bool(val_rows))
    storage = config.storage()
    # A remote storage goes to Ray Train as a filesystem object built from the driver's AWS variables (endpoint,
    # region, credentials), so the controller and workers write with them whatever their own environment holds.
    fs, inner = filesystem(storage) if is_remote(storage) else (None, storage)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": config, "total_steps": total_steps, "validation_rows": val_rows},
        # gloo on CPU, NCCL on GPU (Ray's default picks the same; said here so nobody has to look it up).
        torch_config=TorchConfig(backend="nccl" if config.use_gpu else "gloo"),
        scaling_config=scaling_config(config),
        run_config=ray.train.RunConfig(
            name=config.run_name,
            storage_path=inner,
            storage_filesystem=fs,
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=config.keep_checkpoints,
                checkpoint_score_attribute=score,
                checkpoint_score_order=order,
            ),
            failure_config=ray.train.FailureConfig(max_failures=config.max_failures),
            callbacks=callbacks,
        ),
        datasets={"train": train_ds},
    )


def train(config: TrainConfig) -> TrainOutcome:
    """Run (or resume) a training run end to end; see the module docstring for what it writes."""

    tokenizer, family = _check_before_ray(config)
    init_ray(address=config.ray_address)
    rows, count, failed = _training_rows(config)
    total_steps = steps_for(config, count)
    console.header(
        "train",
        f"{count} training examples ({failed} with a mining error left out), {config.workers} worker(s), "
        f"{total_steps} steps, objective {config.objective.kind}, views {','.join(config.views) or 'none'}",
    )
    train_ds, targets = _tokenized_training_data(config, rows, tokenizer, family)
    val_rows = validation_rows(config)
    result, restarts = _fit(config, train_ds, total_steps, val_rows)
    with staged_folder(config.output) as local:  # an s3:// output is written locally, then uploaded
        outcome = export(config, result, local, has_validation=bool(val_rows))
        report = _train_report(config, outcome, family=family, count=count, failed=failed,
                               val_rows=val_rows, targets=targets, restarts=restarts)
        (local / TRAIN_REPORT).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return outcome


def _check_before_ray(config: TrainConfig) -> tuple[Any, str]:
    """The tokenizer and the student's family (seq2seq or causal), after the checks that refuse a run before Ray
    starts: an existing run name without --resume, a KD teacher that does not share the tokenizer, an MWF causal
    student."""
    from lsr.training.family import check_student

    check_run_name(config)
    tokenizer = load_tokenizer(config.checkpoint)
    config.objective.check_tokenizer(tokenizer)  # e.g. a KD teacher must share it: refused before Ray starts
    family = check_student(config, tokenizer)  # seq2seq or causal; e.g. MWF refuses a causal student
    return tokenizer, family


def _training_rows(config: TrainConfig):
    """The objective's training rows (materialised), their count and how many mined rows were left out with an
    error; refused when there are fewer rows than workers, each of which needs a share."""
    from lsr.training.data import read_training_rows

    objective = config.objective
    rows, count, failed = read_training_rows(
        config.data,
        VIEWS if objective.needs_targets else config.views,
        [*objective.input_columns, *objective.data_columns()],
        config.summary_column,
    )
    rows = objective.training_rows(rows).materialize()  # e.g. AS-ES turns one chain into several rows
    count = rows.count()
    if count < config.workers:
        raise InputError(f"{count} training example(s) for {config.workers} workers; use at most {count} workers")
    return rows, count, failed


def _tokenized_training_data(config: TrainConfig, rows, tokenizer, family: str):
    """The rows with their alignment targets (when the objective needs them), tokenised, and the targets' record.

    Tokenised once and materialised here, before the workers take every CPU (a small cluster would starve Ray
    Data); the target columns and the objective's own columns are kept for the training loop.
    """
    from lsr.model.batching import tokenize_dataset
    from lsr.training.target_pass import ensure_targets
    from lsr.training.targets import target_columns

    targets, keep = None, []
    if config.objective.needs_targets:
        rows, targets = ensure_targets(rows, config.data, config.checkpoint, config.seed, config, config.use_gpu)
        keep = [c for view in VIEWS for c in target_columns(view)[:2]]
    train_ds = tokenize_dataset(
        rows,
        tokenizer,
        source_max_tokens=config.model.source_max_tokens,
        target_max_tokens=config.model.target_max_tokens,
        keep=[*keep, *config.objective.data_columns()],
        summary_column=config.summary_column,
        causal=family == "causal",
    ).materialize()  # tokenise once, before the workers take every CPU (a small cluster would starve Ray Data)
    return train_ds, targets


def _fit(config: TrainConfig, train_ds, total_steps: int, val_rows: list[dict[str, str]]):
    """Ray Train's result of the run and the restarts it survived, with the driver's progress bar (and one line per
    lost worker group); a run that failed raises its error."""
    from lsr.training.progress import training_bar

    with training_bar(total_steps, config.max_failures) as feed:
        result = build_trainer(config, train_ds, total_steps, val_rows, callbacks=[feed.callback]).fit()
    if result.error:
        raise result.error
    return result, feed.restarts


def _train_report(config: TrainConfig, outcome: TrainOutcome, *, family: str, count: int, failed: int,
                  val_rows: list[dict[str, str]], targets, restarts) -> dict[str, Any]:
    """train_report.json: what the run was given and what it made, so that a run folder explains itself."""
    return {
        "config": config.model_dump(mode="json"),
        "student_family": family,
        "examples": count,
        "left_out_with_error": failed,
        "validation_examples": len(val_rows),
        # The stored alignment targets: where, whether reused, and per view the rows without text (no alignment
        # term) and the texts cut at --rationale-max-tokens.
        "targets": targets.summary() if targets is not None else None,
        "steps": outcome.steps,
        "metrics": outcome.metrics,
        "model": outcome.model_dir,
        "best_checkpoint": outcome.best_checkpoint,
        "latest_checkpoint": outcome.latest_checkpoint,
        "gate_plot": outcome.gate_plot,
        # Failures of the worker group survived: one entry per restart (the last step reported before it, the
        # checkpoint step resumed from, the error), and the steps done twice because of them.
        **restarts.summary(),
    }


def export(config: TrainConfig, result, local: Path, *, has_validation: bool) -> TrainOutcome:
    """Copy the last checkpoint's model and history into ``local`` (OUTPUT, or its staging folder when OUTPUT is
    remote) and draw the gate plot; the outcome names the files by their final place in OUTPUT."""
    from lsr.training.gates_plot import plot_gates

    if result.checkpoint is None:
        raise RuntimeError("training ended without a checkpoint")
    model_dir = local / MODEL_DIR
    with result.checkpoint.as_directory() as directory:
        if model_dir.exists():
            shutil.rmtree(model_dir)
        shutil.copytree(Path(directory) / MODEL_DIR, model_dir)
        shutil.copyfile(Path(directory) / HISTORY_FILE, local / HISTORY_FILE)
    history = read_history(local / HISTORY_FILE)
    gate_plot = plot_gates(history, local / GATES_PNG, title=f"{config.dataset}: gates per decoder layer")
    steps = max((row["step"] for row in history), default=0)
    best = best_checkpoint_path(result, has_validation)
    return TrainOutcome(
        output=config.output,
        model_dir=join(config.output, MODEL_DIR),
        steps=steps,
        metrics={k: v for k, v in (result.metrics or {}).items() if isinstance(v, (int, float, str))},
        best_checkpoint=storage_uri(config.storage(), best) if best else None,
        latest_checkpoint=storage_uri(config.storage(), result.checkpoint.path),
        gate_plot=join(config.output, GATES_PNG) if gate_plot else None,
    )


def storage_uri(storage: str, path: str) -> str:
    """A checkpoint's path as a user gives it: Ray Train reports paths inside the filesystem (``bucket/key`` for
    s3), so a remote storage's scheme is put back."""
    if is_remote(storage) and "://" not in path:
        return f"{storage.split('://', 1)[0]}://{path}"
    return path
