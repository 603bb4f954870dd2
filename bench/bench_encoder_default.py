"""The encoder's default, measured: MWF with a trained encoder against MWF with the encoder frozen (the authors').

Both runs use the demo's data (the shipped CNN/DM sample, mined by the oracle engine and selected as the demo does),
the tiny student with the same seed, the same steps and the same stored alignment targets (one target pass serves
both: the targets come from the initial encoder either way). Printed: validation ROUGE at every checkpoint and the
training-loss curve (mean over each checkpoint interval) for both settings; and the target pass's rows per second
and its time against one training epoch's.

    python bench/bench_encoder_default.py [--steps 60] [--checkpoint-every 20] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from lsr.cli.commands.demo import SAMPLES, split_sample
from lsr.cli.main import main as lsr


def curves(output: Path, every: int) -> tuple[dict[int, float], dict[int, float]]:
    """Validation ROUGE (mean of R-1/2/Lsum) per checkpoint step, and the mean loss of each interval."""
    rows = [json.loads(line) for line in (output / "history.jsonl").read_text().splitlines() if line.strip()]
    rouge = {r["step"]: r["val_rouge"] for r in rows if "val_rouge" in r}
    losses: dict[int, list[float]] = {}
    for r in rows:
        if "loss" in r:
            losses.setdefault(-(-r["step"] // every) * every, []).append(r["loss"])
    return rouge, {step: sum(v) / len(v) for step, v in sorted(losses.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--checkpoint-every", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--test-size", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        train_docs, test_docs = split_sample(SAMPLES / "cnndm_sample.jsonl", out / "data", args.test_size)
        assert lsr(["mine", "--input", str(train_docs), "--output", str(out / "mined"), "--dataset", "cnndm",
                    "--engine", "oracle"]) == 0
        assert lsr(["select", "--input", str(out / "mined"), "--output", str(out / "selected"),
                    "--dataset", "cnndm"]) == 0
        common = ["--data", str(out / "selected"), "--dataset", "cnndm", "--model", "tiny", "--workers",
                  str(args.workers), "--max-steps", str(args.steps), "--warmup-steps", str(max(args.steps // 4, 1)),
                  "--lr-scale", "0.02", "--batch-size", "8", "--source-max-tokens", "256", "--target-max-tokens",
                  "64", "--rationale-max-tokens", "64", "--checkpoint-every", str(args.checkpoint_every),
                  "--log-every", str(args.steps), "--validation", str(test_docs), "--validation-size",
                  str(args.test_size), "--val-generation", json.dumps({"num_beams": 2, "min_new_tokens": 8,
                                                                      "max_new_tokens": 48})]  # the demo's settings
        results, passes = {}, {}
        for name, flags in (("encoder trained (default)", []), ("encoder frozen (--freeze-encoder)",
                                                                 ["--freeze-encoder"])):
            output = out / name.split()[1]
            assert lsr(["train", "--output", str(output), *common, *flags]) == 0
            results[name] = curves(output, args.checkpoint_every)
            report = json.loads((output / "train_report.json").read_text())
            passes[name] = (report["targets"], report["metrics"], report["examples"])
    print(f"\ntiny MWF on the demo's CNN/DM data, {args.steps} steps, {args.workers} worker(s), seed 0")
    for name, (rouge, loss) in results.items():
        print(f"{name}:")
        print("  val ROUGE (mean R-1/2/Lsum) by step: " + ", ".join(f"{s}: {v:.4f}" for s, v in rouge.items()))
        print("  training loss by interval:          " + ", ".join(f"{s}: {v:.3f}" for s, v in loss.items()))
    (targets, metrics, examples), *_ = passes.values()
    steps_per_epoch = examples / (8 * args.workers)
    epoch_s = metrics["train_s"] / metrics["step"] * steps_per_epoch
    print(f"target pass (first run; the second {'reused it' if list(passes.values())[1][0]['reused'] else 'did not'}):"
          f" {targets['rows']} rows in {targets['seconds']:.1f}s, {targets['rows_per_s']:.1f} rows/s on CPU, "
          f"{targets['seconds'] / epoch_s:.2f}x the time of one training epoch ({epoch_s:.1f}s, loop time incl. "
          f"validation); empty views "
          f"{targets['empty']}, truncated texts {targets['truncated']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
