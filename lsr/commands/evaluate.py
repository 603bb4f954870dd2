"""``lsr evaluate``: generate with one or more models on the same documents and compare them in one table."""

from __future__ import annotations

import argparse

from lsr.config import DATASETS

HELP = "summarise a test split with each --model, score ROUGE-1/2/Lsum and BERTScore, write a Table-2-style report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", required=True, dest="models", metavar="[NAME=]DIR",
                        help="a checkpoint folder (save_pretrained format); repeat to compare models")
    parser.add_argument("--data", required=True, help="unfiltered test documents (jsonl/parquet/csv, local or s3://)")
    parser.add_argument("--output", required=True,
                        help="folder for results.md, results.json, <name>/predictions.parquet")
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="picks the generation preset")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N documents only")
    parser.add_argument("--batch-size", type=int, default=8, help="documents per generation batch")
    parser.add_argument("--concurrency", type=int, default=1, help="generation actors per model")
    parser.add_argument("--gpu", action="store_true", help="one GPU per generation actor")
    parser.add_argument("--source-max-tokens", type=int, default=None, help="document truncation (default: preset)")
    parser.add_argument("--num-beams", type=int, default=None, help="override the preset's beams")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="override the preset's maximum length")
    parser.add_argument("--min-new-tokens", type=int, default=None, help="override the preset's minimum length")
    parser.add_argument("--bertscore-model", default="auto",
                        help="'auto' (roberta-large if cached, else the offline MiniLM), 'minilm', a name or a path")
    parser.add_argument("--bertscore-layers", type=int, default=None, help="hidden layer BERTScore reads")
    parser.add_argument("--no-bertscore", action="store_true", help="ROUGE only")
    parser.add_argument("--config", default=None, help="a YAML preset overriding the paper's defaults")
    parser.add_argument("--ray-address", default=None, help="a Ray cluster (default: RAY_ADDRESS or a local Ray)")


def run(args: argparse.Namespace) -> int:
    from lsr import console
    from lsr.evaluation import RESULTS_MD, EvaluateSettings, check_checkpoint, evaluate, model_names
    from lsr.ray_utils import init_ray

    overrides = {"num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens,
                 "min_new_tokens": args.min_new_tokens}
    settings = EvaluateSettings(
        models=args.models, data=args.data, output=args.output, dataset=args.dataset, limit=args.limit,
        batch_size=args.batch_size, concurrency=args.concurrency, use_gpu=args.gpu, bertscore=not args.no_bertscore,
        bertscore_model=args.bertscore_model, bertscore_layers=args.bertscore_layers,
        source_max_tokens=args.source_max_tokens, generation={k: v for k, v in overrides.items() if v is not None},
        config_yaml=args.config,
    )
    names = model_names(settings.models)
    for _, path in names:
        check_checkpoint(path)  # before Ray starts
    started = console.header("evaluate", f"{len(names)} model(s) ({', '.join(n for n, _ in names)}) on {args.data}"
                             + ("" if args.no_bertscore else ", ROUGE and BERTScore"))
    init_ray(address=args.ray_address)
    evaluate(settings)
    with open(f"{args.output}/{RESULTS_MD}", encoding="utf-8") as f:
        table = f.read()
    out = args.output.rstrip("/")
    console.summary(started, "the table below", wrote=[f"{out}/{RESULTS_MD}", f"{out}/results.json",
                                                        f"{out}/<model>/predictions.parquet"])
    print(table, end="")
    return 0
