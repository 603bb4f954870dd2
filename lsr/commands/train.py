"""``lsr train``: paper Step 3, train the MWF student (or the plain fine-tuning baseline) on Ray Train."""

from __future__ import annotations

import argparse
import json
import time

from lsr.config import DATASETS

HELP = "train the MWF student (or a plain fine-tuning baseline) on the selected examples with Ray Train"


def _generation_overrides(text: str | None) -> dict:
    if not text:
        return {}
    from lsr.errors import InputError

    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"--val-generation: not a JSON object ({err.msg})") from None
    if not isinstance(value, dict):
        raise InputError("--val-generation: give a JSON object, e.g. '{\"num_beams\": 2}'")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="the selection output (its kept/ folder is used) or Parquet files with rationale columns")
    parser.add_argument("--output", required=True,
                        help="folder for model/, history.jsonl, gates.png, train_report.json and checkpoints/")
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="picks the paper's defaults")
    parser.add_argument("--model", default="tiny",
                        help="'tiny' (random init, shipped tokenizer) or a BART / MWF checkpoint folder")
    parser.add_argument("--views", default="ea,as,ter",
                        help="rationale views of the student, any of ea,as,ter; 'none' trains the plain baseline")
    parser.add_argument("--objective", choices=("mwf", "finetune"), default=None,
                        help="loss: mwf (Eq. 11) or finetune (CE only); default mwf with views, finetune without")
    parser.add_argument("--workers", type=int, default=2, help="data-parallel training workers")
    parser.add_argument("--gpu", action="store_true", help="one GPU per worker (NCCL, bf16 autocast)")
    length = parser.add_mutually_exclusive_group(required=True)
    length.add_argument("--max-steps", type=int, help="optimizer steps to train for")
    length.add_argument("--epochs", type=int, help="passes over the training data")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    parser.add_argument("--batch-size", type=int, default=8, help="examples per worker per micro-batch")
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping norm")
    parser.add_argument("--lr-scale", type=float, default=None, help="Noam scale (default: the paper's 2e-3)")
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help="Noam warm-up (default: the paper's 10000; a short demo needs a few dozen)")
    parser.add_argument("--source-max-tokens", type=int, default=None, help="document truncation (default: preset)")
    parser.add_argument("--target-max-tokens", type=int, default=None, help="summary truncation (default: preset)")
    parser.add_argument("--rationale-max-tokens", type=int, default=256, help="truncation of each rationale text")
    parser.add_argument("--gate-init", type=float, default=None, help="initial gate value (default: preset)")
    parser.add_argument("--gamma-ce", type=float, default=None, help="Eq. 11 CE weight (default: preset)")
    parser.add_argument("--gamma-align", type=float, default=None, help="Eq. 11 alignment weight (default: preset)")
    parser.add_argument("--freeze-gates", action="store_true", help="keep the gates at --gate-init (Table 4)")
    parser.add_argument("--flat", action="store_true", help="modules attend to the encoder, not to each other")
    parser.add_argument("--freeze-encoder", action="store_true", help="freeze the BART encoder (authors' code)")
    parser.add_argument("--validation", default=None,
                        help="unfiltered documents (jsonl/parquet/csv) for validation ROUGE at each checkpoint; "
                        "without it checkpoints are ranked by training loss")
    parser.add_argument("--validation-size", type=int, default=16, help="validation documents used")
    parser.add_argument("--val-generation", default=None,
                        help="JSON overrides of the generation preset for validation, e.g. '{\"num_beams\": 2}'")
    parser.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    parser.add_argument("--keep-checkpoints", type=int, default=2, help="best checkpoints kept (plus the latest)")
    parser.add_argument("--max-failures", type=int, default=1, help="worker-group restarts after a failure")
    parser.add_argument("--log-every", type=int, default=10, help="steps between progress lines")
    parser.add_argument("--storage-path", default=None,
                        help="checkpoint storage, local or s3:// (default: OUTPUT/checkpoints)")
    parser.add_argument("--run-name", default="train", help="the run's name inside the storage path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--find-unused-parameters", action="store_true", help="DDP option, for exotic models")
    parser.add_argument("--config", default=None, help="a YAML preset overriding the paper's defaults")
    parser.add_argument("--ray-address", default=None, help="a Ray cluster (default: RAY_ADDRESS or a local Ray)")


def run(args: argparse.Namespace) -> int:
    from lsr import console
    from lsr.ray_utils import init_ray
    from lsr.train.settings import TrainSettings, parse_views
    from lsr.train.trainer import train

    settings = TrainSettings(
        data=args.data, output=args.output, dataset=args.dataset, model=args.model, views=parse_views(args.views),
        objective=args.objective, workers=args.workers, use_gpu=args.gpu, max_steps=args.max_steps,
        epochs=args.epochs, batch_size=args.batch_size, grad_accum=args.grad_accum, max_grad_norm=args.max_grad_norm,
        lr_scale=args.lr_scale, warmup_steps=args.warmup_steps, source_max_tokens=args.source_max_tokens,
        target_max_tokens=args.target_max_tokens, rationale_max_tokens=args.rationale_max_tokens,
        gate_init=args.gate_init, gamma_ce=args.gamma_ce, gamma_align=args.gamma_align,
        gates_trainable=not args.freeze_gates, hierarchical=not args.flat, freeze_encoder=args.freeze_encoder,
        validation=args.validation, validation_size=args.validation_size,
        validation_generation=_generation_overrides(args.val_generation), checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints, max_failures=args.max_failures, log_every=args.log_every,
        storage_path=args.storage_path, run_name=args.run_name, seed=args.seed, resume=args.resume,
        find_unused_parameters=args.find_unused_parameters, config_yaml=args.config,
    )
    settings = settings.resolved()  # fail on bad options before Ray starts
    started = time.monotonic()
    init_ray(address=args.ray_address)
    outcome = train(settings)
    val = {k: v for k, v in outcome.metrics.items() if k.startswith("val_")}
    loss = outcome.metrics.get("loss")
    console.summary(
        started,
        f"trained {outcome.steps} steps"
        + (f", mean loss {loss:.3f} since the previous checkpoint" if isinstance(loss, float) else "")
        + (f"; validation {', '.join(f'{k} {v:.4f}' for k, v in val.items())}" if val else ""),
        wrote=[outcome.model_dir, outcome.gate_plot, outcome.output / "history.jsonl",
               outcome.output / "train_report.json"],
    )
    return 0
