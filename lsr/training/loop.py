"""The per-worker training loop run by Ray Train: DDP, accumulation, clipping, Noam, validation, checkpoints.

Every worker runs :func:`train_loop_per_worker` on its shard of the tokenised data. Rank 0 alone keeps the
per-step history (loss parts, learning rate, every gate), runs validation (generation + ROUGE on a small,
unfiltered split) and writes checkpoints; all ranks call ``ray.train.report`` together so Ray Train can keep
the best ones and restore the latest after a failure or on ``--resume``.

The loop is :class:`WorkerRun`, one method per step: :meth:`~WorkerRun.start` (restore or build, wrap in DDP,
optimizer, scheduler, objective set-up), :meth:`~WorkerRun.batches` (epochs over the shard, skipping what a
restored run already saw), :meth:`~WorkerRun.backward` (one micro-batch), :meth:`~WorkerRun.optimizer_step`,
:meth:`~WorkerRun.record` (history) and :meth:`~WorkerRun.report` (progress line, validation, checkpoint).

Restoring puts the step counter, the learning rate and the optimizer moments back exactly, skips the batches of
the interrupted epoch already seen, and reseeds torch from ``seed + rank + step`` (cheaper than storing every
worker's RNG, and just as reproducible).

``ray`` is imported inside the functions that use it, so that importing this module for one of its functions (on
the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from lsr.data.rouge import mean_scores, rouge_scores
from lsr.model.batching import pad_batch
from lsr.model.generate import generate
from lsr.model.loading import load_student
from lsr.training.checkpoints import (
    HISTORY_FILE,
    MODEL_DIR,
    STATE_FILE,
    Progress,
    load_checkpoint,
    save_checkpoint,
    unwrap,
)
from lsr.training.config import TrainConfig
from lsr.training.schedule import noam_scheduler

__all__ = ["HISTORY_FILE", "MODEL_DIR", "STATE_FILE", "WorkerRun", "train_loop_per_worker"]


def gate_record(model: torch.nn.Module) -> dict[str, float]:
    """Every gate as a flat ``{"gate/<view>/<layer>": value}``; empty for a model without gates."""
    values = getattr(unwrap(model), "gate_values", None)
    if values is None:
        return {}
    return {f"gate/{view}/{layer}": float(v) for view, gates in values().items() for layer, v in enumerate(gates)}


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam over the trainable parameters only (a frozen encoder or frozen gates stay out of it)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=config.model.lr_scale, betas=tuple(config.adam_betas), eps=config.adam_eps)


def validate(
    model: torch.nn.Module,
    tokenizer: Any,
    rows: list[dict[str, str]],
    config: TrainConfig,
    device: torch.device,
) -> tuple[dict[str, float], list[str]]:
    """Mean ROUGE-1/2/Lsum (x1, in [0, 1]) of the model's summaries of ``rows``, and the summaries."""
    model = unwrap(model)
    was_training = model.training
    model.eval()
    predictions: list[str] = []
    for start in range(0, len(rows), config.validation_batch_size):
        chunk = rows[start : start + config.validation_batch_size]
        predictions += generate(
            model,
            tokenizer,
            [r["document"] for r in chunk],
            source_max_tokens=config.model.source_max_tokens,
            generation_kwargs=config.generation_kwargs(),
            device=device,
        )
    model.train(was_training)
    scores = mean_scores(rouge_scores(predictions, [r["summary"] for r in rows]))
    scores["rouge"] = (scores["rouge1"] + scores["rouge2"] + scores["rougeLsum"]) / 3
    return {f"val_{k}": v for k, v in scores.items()}, predictions


def _pad_collate(pad_token_id: int):
    """Ray Data's collate hook around :func:`pad_batch` (a ``NumpyBatchCollateFn``, as Ray asks for)."""
    from ray.data.collate_fn import NumpyBatchCollateFn

    class PadCollate(NumpyBatchCollateFn):
        def __call__(self, batch):
            return pad_batch(batch, pad_token_id)

    return PadCollate()


def pad_token_id(model: torch.nn.Module, tokenizer: Any) -> int:
    """The id batches are padded with: the model's, else the tokenizer's, else end-of-sequence (a causal LM such as
    Llama has no pad token; the attention mask and the -100 labels hide padding whatever its id)."""
    for value in (model.config.pad_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    raise ValueError("neither the model nor its tokenizer names a pad or end-of-sequence token")


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class WorkerRun:
    """One worker's share of a training run, as named steps (see the module docstring)."""

    def __init__(self, config: TrainConfig, total_steps: int, validation_rows: list[dict[str, str]]):
        import ray.train
        import ray.train.torch

        self.config = config
        self.total_steps = total_steps
        self.validation_rows = validation_rows
        self.rank = ray.train.get_context().get_world_rank()
        self.device = ray.train.torch.get_device()
        self.objective = config.objective
        self.progress = Progress()
        self.resumed_from: int | None = None  # the step this attempt restored (after a failure or --resume)
        self.history: list[dict] = []
        self.window: list[float] = []  # losses since the last checkpoint, for its "loss" metric
        self.micro = 0
        self.started, self.rows_seen = time.perf_counter(), 0

    # ---- set-up ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """The model (restored, or built from ``--model``) in DDP, its optimizer and scheduler, the objective."""
        import ray.train
        import ray.train.torch


        checkpoint = ray.train.get_checkpoint()
        restored = load_checkpoint(checkpoint) if checkpoint is not None else None
        if restored is not None:
            model, self.tokenizer = restored.model, restored.tokenizer
            self.progress, self.history = restored.progress, restored.history
            self.resumed_from = self.progress.step
            self.log(f"resuming from step {self.progress.step} (epoch {self.progress.epoch})")
        else:
            config = self.config
            model, self.tokenizer = load_student(config.checkpoint, config.mwf_fields(), seed=config.seed)
        torch.manual_seed(self.config.seed + self.rank + self.progress.step)
        if hasattr(model, "recompute_modules"):  # an MWF student (a causal one has no modules)
            model.recompute_modules(self.config.recompute_modules)

        self.model = ray.train.torch.prepare_model(
            model, parallel_strategy_kwargs={"find_unused_parameters": self.config.find_unused_parameters}
        )
        self.model.train()
        self.optimizer = build_optimizer(self.model, self.config)
        self.scheduler = noam_scheduler(self.optimizer, self.config.model.warmup_steps)
        if restored is not None:
            self.optimizer.load_state_dict(restored.optimizer_state)
            self.scheduler.load_state_dict(restored.scheduler_state)
        self.objective.setup(unwrap(self.model), self.device)

    # ---- the steps -------------------------------------------------------------------------------------------

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """Micro-batches on the device, epoch after epoch, without those a restored run already trained on."""
        import ray.train

        shard = ray.train.get_dataset_shard("train")
        collate = _pad_collate(pad_token_id(unwrap(self.model), self.tokenizer))
        shuffle = self.config.shuffle_buffer
        while True:
            skip = self.progress.batches_into_epoch
            seen_in_epoch = 0
            for index, batch in enumerate(
                shard.iter_torch_batches(
                    batch_size=self.config.batch_size,
                    collate_fn=collate,
                    local_shuffle_buffer_size=shuffle or None,
                    local_shuffle_seed=self.config.seed + self.progress.epoch if shuffle else None,
                )
            ):
                seen_in_epoch += 1
                if index < skip:
                    continue
                self.progress.batches_into_epoch = index + 1
                yield _to_device(batch, self.device)
            if seen_in_epoch == 0:
                raise RuntimeError(f"worker {self.rank} received no training batch; use fewer workers than examples")
            self.progress.epoch += 1
            self.progress.batches_into_epoch = 0

    def backward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor], bool]:
        """Loss and parts of one micro-batch, backpropagated (scaled for accumulation); whether the step is due."""
        self.micro += 1
        last_micro = self.micro % self.config.grad_accum == 0
        no_sync = not last_micro and hasattr(self.model, "no_sync")
        sync = self.model.no_sync() if no_sync else contextlib.nullcontext()
        autocast = (
            torch.autocast(device_type="cuda", dtype=torch.bfloat16) if self.config.use_gpu
            else contextlib.nullcontext()
        )
        with sync, autocast:
            loss, parts = self.objective(self.model, batch)
            (loss / self.config.grad_accum).backward()
        self.rows_seen += int(batch["input_ids"].shape[0])
        return loss, parts, last_micro

    def optimizer_step(self) -> tuple[float, float]:
        """Clip, step the optimizer and the schedule; the gradient norm and the learning rate used."""
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for p in self.model.parameters() if p.requires_grad], self.config.max_grad_norm
        )
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.step += 1
        return float(grad_norm), lr

    def record(self, loss: torch.Tensor, parts: dict[str, torch.Tensor], lr: float, grad_norm: float) -> None:
        """One history row per optimizer step (rank 0): loss and its parts, lr, gradient norm, every gate."""
        self.window.append(float(loss.detach()))
        if self.rank != 0:
            return
        self.history.append(
            {
                "step": self.progress.step,
                "epoch": self.progress.epoch,
                "loss": float(loss.detach()),
                **{f"loss/{k}": float(v.detach()) for k, v in parts.items()},
                "lr": lr,
                "grad_norm": grad_norm,
                **gate_record(self.model),
            }
        )

    def report(self, loss: torch.Tensor, lr: float) -> None:
        """Checkpoint (with validation) every ``--checkpoint-every`` steps and at the end; a progress line between."""
        step = self.progress.step
        elapsed = time.perf_counter() - self.started
        speed = {"train_s": elapsed, "examples_per_s": self.rows_seen / elapsed if elapsed > 0 else 0.0}
        if step >= self.total_steps or step % self.config.checkpoint_every == 0:
            self.save({**self.checkpoint_metrics(), **speed})
        elif step % self.config.log_every == 0:
            metrics = {"step": step, "loss": float(loss.detach()), "lr": lr, **speed}
            if self.resumed_from is not None:  # the driver's account of restarts reads the step restored
                metrics["resumed_from_step"] = self.resumed_from
            self.log(
                f"step {step}/{self.total_steps} loss {metrics['loss']:.4f} lr {lr:.3g} "
                f"{speed['examples_per_s']:.1f} ex/s/worker"
            )
            import ray.train

            ray.train.report(metrics)

    def checkpoint_metrics(self) -> dict[str, Any]:
        """The metrics a checkpoint is ranked by: the mean loss since the last one, and validation ROUGE (rank 0)."""
        metrics: dict[str, Any] = {"step": self.progress.step, "epoch": self.progress.epoch}
        metrics["loss"] = sum(self.window) / len(self.window) if self.window else float("nan")
        if self.resumed_from is not None:  # says in the run's metrics that a restart (or --resume) happened
            metrics["resumed_from_step"] = self.resumed_from
        self.window.clear()
        if self.validation_rows and self.rank == 0:
            scores, _ = validate(self.model, self.tokenizer, self.validation_rows, self.config, self.device)
            metrics.update(scores)
            self.history.append({"step": self.progress.step, **scores})
            self.log(f"step {self.progress.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        return metrics

    def save(self, metrics: dict[str, Any]) -> None:
        """All ranks report together; rank 0 attaches the checkpoint."""
        import ray.train

        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if self.rank == 0:
                save_checkpoint(Path(tmp), self.model, self.tokenizer, self.optimizer, self.scheduler, self.progress,
                                self.history)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)

    def log(self, message: str) -> None:
        if self.rank == 0:
            print(f"[lsr train] {message}", flush=True)

    # ---- the loop --------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.start()
        if self.progress.step >= self.total_steps:
            return
        for batch in self.batches():
            loss, parts, step_due = self.backward(batch)
            if not step_due:
                continue
            grad_norm, lr = self.optimizer_step()
            self.record(loss, parts, lr, grad_norm)
            self.report(loss, lr)
            if self.progress.step >= self.total_steps:
                return


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train's worker function; ``loop_config`` is built by :func:`lsr.training.trainer.build_trainer`."""
    WorkerRun(loop_config["config"], loop_config["total_steps"], loop_config["validation_rows"]).run()
