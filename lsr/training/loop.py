"""The per-worker training loop run by Ray Train: DDP, accumulation, clipping, Noam, validation, checkpoints.

Every worker runs :func:`train_loop_per_worker` on its shard of the tokenised data. Rank 0 alone keeps the
per-step history (loss parts, learning rate, every gate), runs validation (generation + ROUGE on a small,
unfiltered split) and writes checkpoints; all ranks call ``ray.train.report`` together so Ray Train can keep
the best ones and restore the latest after a failure or on ``--resume``.

A checkpoint holds ``model/`` (``save_pretrained`` with the tokenizer), ``state.pt`` (optimizer, scheduler,
step, epoch, batches into the epoch) and ``history.jsonl``. Restoring puts the step counter, the learning rate
and the optimizer moments back exactly, skips the batches of the interrupted epoch already seen, and reseeds
torch from ``seed + rank + step`` (cheaper than storing every worker's RNG, and just as reproducible).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

from lsr.train.data import pad_batch
from lsr.train.objectives import make_objective
from lsr.train.schedule import noam_scheduler
from lsr.train.settings import TrainSettings

MODEL_DIR = "model"
STATE_FILE = "state.pt"
HISTORY_FILE = "history.jsonl"
VALIDATION_FILE = "validation.jsonl"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def gate_record(model: torch.nn.Module) -> dict[str, float]:
    """Every gate as a flat ``{"gate/<view>/<layer>": value}``; empty for a model without gates."""
    values = getattr(unwrap(model), "gate_values", None)
    if values is None:
        return {}
    return {f"gate/{view}/{layer}": float(v) for view, gates in values().items() for layer, v in enumerate(gates)}


def build_optimizer(model: torch.nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """Adam over the trainable parameters only (a frozen encoder or frozen gates stay out of it)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=settings.lr_scale, betas=tuple(settings.adam_betas), eps=settings.adam_eps)


def validate(
    model: torch.nn.Module,
    tokenizer: Any,
    rows: list[dict[str, str]],
    settings: TrainSettings,
    device: torch.device,
) -> tuple[dict[str, float], list[str]]:
    """Mean ROUGE-1/2/Lsum (x1, in [0, 1]) of the model's summaries of ``rows``, and the summaries."""
    from lsr.evaluation import generate_batch
    from lsr.metrics import mean_scores, rouge_scores

    model = unwrap(model)
    was_training = model.training
    model.eval()
    predictions: list[str] = []
    for start in range(0, len(rows), settings.validation_batch_size):
        chunk = rows[start : start + settings.validation_batch_size]
        predictions += generate_batch(
            model,
            tokenizer,
            [r["document"] for r in chunk],
            source_max_tokens=settings.source_max_tokens,
            generation_kwargs=settings.generation_kwargs(),
            device=device,
        )
    model.train(was_training)
    scores = mean_scores(rouge_scores(predictions, [r["summary"] for r in rows]))
    scores["rouge"] = (scores["rouge1"] + scores["rouge2"] + scores["rougeLsum"]) / 3
    return {f"val_{k}": v for k, v in scores.items()}, predictions


def _save_checkpoint(
    directory: Path, model, tokenizer, optimizer, scheduler, counters: dict[str, int], history: list[dict]
) -> None:
    unwrap(model).save_pretrained(directory / MODEL_DIR)
    tokenizer.save_pretrained(directory / MODEL_DIR)
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), **counters}, directory / STATE_FILE
    )
    with open(directory / HISTORY_FILE, "w", encoding="utf-8") as f:
        for row in history:
            f.write(json.dumps(row) + "\n")


def _load_history(directory: Path) -> list[dict]:
    path = directory / HISTORY_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _pad_collate(pad_token_id: int):
    """Ray Data's collate hook around :func:`pad_batch` (a ``NumpyBatchCollateFn``, as Ray asks for)."""
    from ray.data.collate_fn import NumpyBatchCollateFn

    class PadCollate(NumpyBatchCollateFn):
        def __call__(self, batch):
            return pad_batch(batch, pad_token_id)

    return PadCollate()


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train's worker function; ``config`` is built by :func:`lsr.train.trainer.loop_config`."""
    import ray.train
    import ray.train.torch

    from lsr.presets import load_student

    settings = TrainSettings(**config["settings"])
    total_steps: int = config["total_steps"]
    validation_rows: list[dict[str, str]] = config["validation_rows"]
    context = ray.train.get_context()
    rank = context.get_world_rank()
    device = ray.train.torch.get_device()

    counters = {"step": 0, "epoch": 0, "batches_into_epoch": 0}
    history: list[dict] = []
    checkpoint = ray.train.get_checkpoint()
    optimizer_state = scheduler_state = None
    if checkpoint is not None:
        from transformers import AutoTokenizer

        from lsr.model import GatedBartForConditionalGeneration

        with checkpoint.as_directory() as directory:
            directory = Path(directory)
            model = GatedBartForConditionalGeneration.from_pretrained(directory / MODEL_DIR)
            tokenizer = AutoTokenizer.from_pretrained(directory / MODEL_DIR)
            state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=False)
            history = _load_history(directory)
        optimizer_state, scheduler_state = state.pop("optimizer"), state.pop("scheduler")
        counters.update({k: int(state[k]) for k in counters})
        if rank == 0:
            print(f"[lsr train] resuming from step {counters['step']} (epoch {counters['epoch']})", flush=True)
    else:
        model, tokenizer = load_student(settings.model, settings.mwf_fields(), seed=settings.seed)
    torch.manual_seed(settings.seed + rank + counters["step"])

    model = ray.train.torch.prepare_model(
        model, parallel_strategy_kwargs={"find_unused_parameters": settings.find_unused_parameters}
    )
    model.train()
    optimizer = build_optimizer(model, settings)
    scheduler = noam_scheduler(optimizer, settings.warmup_steps)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
        scheduler.load_state_dict(scheduler_state)
    objective = make_objective(settings.objective)
    autocast = partial(torch.autocast, device_type="cuda", dtype=torch.bfloat16) if settings.use_gpu else None

    shard = ray.train.get_dataset_shard("train")
    collate = _pad_collate(unwrap(model).config.pad_token_id)
    accum = settings.grad_accum
    window: list[float] = []
    started, rows_seen = time.perf_counter(), 0

    def report(metrics: dict[str, Any], save: bool) -> None:
        if not save:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = None
            if rank == 0:
                _save_checkpoint(Path(tmp), model, tokenizer, optimizer, scheduler, counters, history)
                ckpt = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=ckpt)

    def checkpoint_metrics() -> dict[str, Any]:
        metrics: dict[str, Any] = {"step": counters["step"], "epoch": counters["epoch"]}
        metrics["loss"] = sum(window) / len(window) if window else float("nan")
        if validation_rows and rank == 0:
            scores, _ = validate(model, tokenizer, validation_rows, settings, device)
            metrics.update(scores)
            history.append({"step": counters["step"], **scores})
            print(f"[lsr train] step {counters['step']}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()),
                  flush=True)
        return metrics

    micro = 0
    while counters["step"] < total_steps:
        skip = counters["batches_into_epoch"]
        batches = shard.iter_torch_batches(
            batch_size=settings.batch_size,
            collate_fn=collate,
            local_shuffle_buffer_size=settings.shuffle_buffer or None,
            local_shuffle_seed=settings.seed + counters["epoch"] if settings.shuffle_buffer else None,
        )
        seen_in_epoch = 0
        for index, batch in enumerate(batches):
            seen_in_epoch += 1
            if index < skip:
                continue
            counters["batches_into_epoch"] = index + 1
            batch = _to_device(batch, device)
            micro += 1
            last_micro = micro % accum == 0
            sync = contextlib.nullcontext() if last_micro or not hasattr(model, "no_sync") else model.no_sync()
            with sync, autocast() if autocast else contextlib.nullcontext():
                loss, parts = objective(model, batch)
                (loss / accum).backward()
            rows_seen += int(batch["input_ids"].shape[0])
            if not last_micro:
                continue
            grad_norm = torch.nn.utils.clip_grad_norm_(
                [p for p in model.parameters() if p.requires_grad], settings.max_grad_norm
            )
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            counters["step"] += 1
            step = counters["step"]
            window.append(float(loss.detach()))
            if rank == 0:
                history.append(
                    {
                        "step": step,
                        "epoch": counters["epoch"],
                        "loss": float(loss.detach()),
                        **{f"loss/{k}": float(v.detach()) for k, v in parts.items()},
                        "lr": lr,
                        "grad_norm": float(grad_norm),
                        **gate_record(model),
                    }
                )
            elapsed = time.perf_counter() - started
            speed = {"train_s": elapsed, "examples_per_s": rows_seen / elapsed if elapsed > 0 else 0.0}
            if step >= total_steps or step % settings.checkpoint_every == 0:
                metrics = {**checkpoint_metrics(), **speed}
                window.clear()
                report(metrics, save=True)
            elif step % settings.log_every == 0:
                metrics = {"step": step, "loss": float(loss.detach()), "lr": lr, **speed}
                if rank == 0:
                    print(
                        f"[lsr train] step {step}/{total_steps} loss {metrics['loss']:.4f} lr {lr:.3g} "
                        f"{speed['examples_per_s']:.1f} ex/s/worker",
                        flush=True,
                    )
                report(metrics, save=False)
            if step >= total_steps:
                return
        if seen_in_epoch == 0:
            raise RuntimeError(f"worker {rank} received no training batch; use fewer workers than examples")
        counters["epoch"] += 1
        counters["batches_into_epoch"] = 0
