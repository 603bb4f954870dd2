"""``lsr demo``: the whole pipeline, end to end, on the sample shipped in the package and a local Ray.

It runs the real stages through their own commands (no shortcuts): the oracle miner (an extractive stand-in for
the LLM, so it runs anywhere; say ``--engine http --url ...`` to use a real endpoint), Score1/Score2 selection,
Ray Train on the ``tiny`` preset for both the MWF student and the plain fine-tuning baseline, and one evaluation
table comparing the two. The figures of a tiny random-init model trained for minutes are a smoke test of the
machinery, not a result; use ``facebook/bart-large`` and the full corpus for that.

``--method`` adds the other training methods to the same chain and table (:mod:`lsr.cli.demo_methods`):
``logit-kd`` a teacher, a logit-KD student and a sequence-level KD student (and a decoder-only teacher and KD
student); ``as-es`` the segmentation and the dual and unified AS-ES students. The default, ``mwf``, is the demo
above, unchanged.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from lsr.data.layout import (
    MODEL_DIR,
    RUN_DATA_DIR,
    RUN_EVAL_DIR,
    RUN_MINED_DIR,
    RUN_SELECTED_DIR,
    SELECTION_REPORT_JSON,
)

HELP = ("run mine -> select -> train (MWF and plain baseline; --method adds logit-KD or AS-ES students) -> "
        "evaluate on the shipped sample, locally")

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
#: Examples per worker step; selection must keep at least this many rows for the demo to train.
DEMO_BATCH_SIZE = 8
COMMANDS_FILE = "commands.sh"
METHODS = ("mwf", "logit-kd", "as-es")
#: Training steps per model when --steps is not given: the other methods train five or seven models, so fewer each.
DEFAULT_STEPS = {"mwf": 100, "logit-kd": 20, "as-es": 20}
#: What the demo leaves behind (relative to --output), listed at the end.
ARTIFACTS = (
    ("data/train.jsonl, data/test.jsonl", "the documents mined and trained on; the held-out ones"),
    ("mined/, mined.report.md", "rationales and LLM-style summaries, one row per document"),
    ("selected/kept/, selected/report.md, scores.png", "the rows Score1/Score2 kept, and why others were not"),
    ("mwf/model/, mwf/gates.png, mwf/history.jsonl", "the MWF student, its gates and loss per step"),
    ("plain/model/", "the plain fine-tuned baseline"),
    ("eval/results.md, eval/*/predictions.parquet", "the table above and every generated summary"),
    ("report.html", "all of it on one page, to open in a browser"),
    (COMMANDS_FILE, "every stage's command, to run them by hand"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=("cnndm", "xsum"), default="cnndm")
    parser.add_argument("--input", help="documents to use instead of the shipped sample (jsonl)")
    parser.add_argument("--output", default="runs/demo", help="folder for every stage's output (default: runs/demo)")
    parser.add_argument("--test-size", type=int, default=8, help="documents held out for validation and evaluation")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"training steps per model (default: {DEFAULT_STEPS['mwf']}; with --method logit-kd or "
                        f"as-es, which train five or seven models, {DEFAULT_STEPS['logit-kd']})")
    parser.add_argument("--workers", type=int, default=2, help="Ray Train workers")
    parser.add_argument("--engine", choices=("oracle", "http"), default="oracle")
    parser.add_argument("--url", help="http engine: an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--llm", help="http engine: the served model name")
    parser.add_argument("--no-bertscore", action="store_true", help="ROUGE only in the evaluation table")
    parser.add_argument("--method", choices=METHODS, default="mwf",
                        help="mwf: MWF student and plain baseline; logit-kd: also a teacher, a logit-KD and a "
                        "sequence-level KD student, and a decoder-only teacher and logit-KD student; as-es: also "
                        "the dual and unified AS-ES students (default: mwf)")


def split_sample(source: Path, out_dir: Path, test_size: int, seed: int = 0) -> tuple[Path, Path]:
    """A seeded train/test split of a JSON Lines file, so the test documents are never mined or trained on."""
    from lsr.core.errors import InputError

    lines = [line for line in source.read_text().splitlines() if line.strip()]
    if len(lines) <= test_size:
        raise InputError(f"{source}: {len(lines)} rows; the demo needs more than --test-size ({test_size})")
    random.Random(seed).shuffle(lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, test = out_dir / "train.jsonl", out_dir / "test.jsonl"
    train.write_text("\n".join(lines[test_size:]) + "\n")
    test.write_text("\n".join(lines[:test_size]) + "\n")
    return train, test


def _stage(argv: list[str], script: Path) -> None:
    """Run one stage through the CLI (in this process, so every stage shares one Ray instance), stopping the
    demo at the first stage that fails; its command goes to ``script``, for running the stages by hand."""
    import shlex

    from lsr.cli.main import main
    from lsr.core.errors import LsrError

    with script.open("a", encoding="utf-8") as f:
        f.write(shlex.join(["lsr", *argv]) + "\n")
    print(flush=True)
    status = main(argv)
    if status != 0:
        raise LsrError(f"stage `lsr {argv[0]}` failed with exit status {status}; see its message above")


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    steps = args.steps if args.steps is not None else DEFAULT_STEPS[args.method]
    source = Path(args.input) if args.input else SAMPLES / f"{args.dataset}_sample.jsonl"
    train_docs, test_docs = split_sample(source, out / RUN_DATA_DIR, args.test_size)
    script = out / COMMANDS_FILE
    script.write_text("#!/bin/sh\n# The stages `lsr demo` ran, in order.\nset -e\n", encoding="utf-8")
    print(f"lsr demo ({args.dataset}): {source} -> {out}/, {args.test_size} documents held out for validation "
          "and evaluation", flush=True)
    _mine_stage(args, train_docs, out, script)
    _select_stage(args, out, script)
    models = _train_stages(args, out, test_docs, steps, script)
    _evaluate_stage(args, models, out, test_docs, script)  # prints the table
    from lsr.cli.demo_reading import reading

    print("\n" + reading(out / "mwf", steps), flush=True)
    from lsr.report import write_report

    report = write_report(out)
    _print_artifacts(args.method, out)
    print(f"\nopen the run report in a browser: {report}")
    return 0


def _mine_stage(args: argparse.Namespace, train_docs: Path, out: Path, script: Path) -> None:
    """Mine the training documents into ``out/mined`` with the oracle, or the endpoint --url names."""
    mine = ["mine", "--input", str(train_docs), "--output", str(out / RUN_MINED_DIR), "--dataset", args.dataset]
    mine += ["--engine", args.engine]
    if args.engine == "http":
        mine += ["--url", args.url or "", "--model", args.llm or ""]
    _stage(mine, script)


def _select_stage(args: argparse.Namespace, out: Path, script: Path) -> None:
    """Select the mined rows into ``out/selected``, relaxing the threshold where the oracle needs it (and saying
    so); stops the demo in one line when too few rows are kept to train a batch on every worker."""
    from lsr.cli.demo_selection import check_enough_kept, demo_selection_args

    relax, note = demo_selection_args(args.dataset, args.engine)
    if note:
        print(note, flush=True)
    _stage(["select", "--input", str(out / RUN_MINED_DIR), "--output", str(out / RUN_SELECTED_DIR),
            "--dataset", args.dataset, "--overwrite", *relax], script)
    check_enough_kept(json.loads((out / RUN_SELECTED_DIR / SELECTION_REPORT_JSON).read_text()),
                      max(args.workers, DEMO_BATCH_SIZE))


def _train_stages(args: argparse.Namespace, out: Path, test_docs: Path, steps: int, script: Path) -> list[str]:
    """Train the MWF student and the plain baseline on the selected rows (and --method's students, which share
    their settings); the ``--model NAME=PATH`` arguments of every trained model, for the evaluation."""
    model_args = ["--dataset", args.dataset, "--model", "tiny",
                  "--workers", str(args.workers), "--max-steps", str(steps),
                  "--warmup-steps", str(max(steps // 4, 1)),
                  # Demo-sized settings: a tiny random-init model on CPU needs a larger Noam scale than BART-large's
                  # 2e-3 to move in a hundred steps, and short inputs keep each step fast.
                  "--lr-scale", "0.02", "--batch-size", str(DEMO_BATCH_SIZE), "--source-max-tokens", "256",
                  "--target-max-tokens", "64",
                  "--rationale-max-tokens", "64"]
    validation = ["--validation", str(test_docs), "--validation-size", str(args.test_size),
                  "--val-generation", json.dumps({"num_beams": 2, "min_new_tokens": 8, "max_new_tokens": 48})]
    common = ["--data", str(out / RUN_SELECTED_DIR), *model_args, *validation]
    _stage(["train", "--output", str(out / "mwf"), *common], script)
    _stage(["train", "--output", str(out / "plain"), "--views", "none", *common], script)
    models = ["--model", f"LSR-MWF={out / 'mwf' / MODEL_DIR}", "--model", f"BART={out / 'plain' / MODEL_DIR}"]
    if args.method != "mwf":
        from lsr.cli.demo_methods import train_method

        models += train_method(args.method, out, common=common, model_args=model_args, steps=steps,
                               stage=lambda argv: _stage(argv, script))
    return models


def _evaluate_stage(args: argparse.Namespace, models: list[str], out: Path, test_docs: Path, script: Path) -> None:
    """Evaluate every trained model on the held-out documents into one table (``out/eval``), with the decoding
    the validation used."""
    evaluate = ["evaluate", *models,
                "--data", str(test_docs), "--output", str(out / RUN_EVAL_DIR), "--dataset", args.dataset,
                "--num-beams", "2", "--min-new-tokens", "8", "--max-new-tokens", "48", "--source-max-tokens", "256"]
    if args.no_bertscore:
        evaluate.append("--no-bertscore")
    _stage(evaluate, script)


def _print_artifacts(method: str, out: Path) -> None:
    """What the demo left under ``out`` (the method's own folders included), so a reader knows where to look."""
    from lsr.cli.demo_methods import ARTIFACTS as METHOD_ARTIFACTS

    print(f"\nartifacts under {out}/:")
    artifacts = (*ARTIFACTS, *METHOD_ARTIFACTS.get(method, ()))
    width = max(len(path) for path, _ in artifacts) + 2
    for path, what in artifacts:
        print(f"  {path:<{width}}{what}")
