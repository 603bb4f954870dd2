"""``lsr mine``: paper Step 1, structured rationales and LLM summaries for every document (resumable)."""

from __future__ import annotations

import argparse

from lsr.config import DATASETS
from lsr.mining.engines import ENGINES

HELP = "mine rationales and summaries with an LLM (vllm, http) or the extractive oracle; resumable, nothing lost"


def _replicas(text: str) -> tuple[int, int]:
    try:
        low, _, high = text.partition(",")
        return int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN,MAX, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="documents: jsonl/parquet/csv file or folder, local or s3://")
    parser.add_argument(
        "--output",
        required=True,
        help="output folder of Parquet files (local or s3://); "
        "the report goes next to it as OUTPUT.report.json and OUTPUT.report.md",
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="picks the prompts and output budgets")
    parser.add_argument(
        "--engine",
        required=True,
        choices=ENGINES,
        help="vllm: in-cluster GPUs; http: an OpenAI-compatible endpoint; oracle: no LLM, an extractive baseline",
    )
    parser.add_argument("--config", default=None, help="a YAML preset overriding the paper's defaults")
    parser.add_argument("--model", default=None, help="vllm: model path or id; http: the served model name")
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents (resume with the same N)")
    parser.add_argument("--rows-per-file", type=int, default=64,
                        help="rows per output file: the most a killed run loses and redoes")
    llm = parser.add_argument_group("LLM engines")
    llm.add_argument("--max-model-len", type=int, default=8192, help="context length; longer documents are cut")
    llm.add_argument("--tokenizer", default=None, help="local tokenizer path for counting tokens (default: words)")
    llm.add_argument("--tokens-per-word", type=float, default=1.4, help="token estimate without a tokenizer")
    llm.add_argument("--batch-size", type=int, default=None, help="rows per request batch (http 16, vllm 32)")
    http = parser.add_argument_group("http engine")
    http.add_argument("--url", default=None, help="endpoint base URL, e.g. http://host:8000/v1")
    http.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    http.add_argument("--concurrency", type=int, default=1, help="request actors")
    http.add_argument("--max-in-flight", type=int, default=16, help="concurrent requests per actor")
    http.add_argument("--qps", type=int, default=None, help="request rate limit per actor")
    http.add_argument("--max-retries", type=int, default=4, help="retries on 429/5xx/connection errors")
    http.add_argument("--retry-wait", type=float, default=1.0, help="base backoff in seconds (doubles per retry)")
    http.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    vllm = parser.add_argument_group("vllm engine")
    vllm.add_argument("--tensor-parallel-size", type=int, default=1)
    vllm.add_argument("--pipeline-parallel-size", type=int, default=1)
    vllm.add_argument("--replicas", type=_replicas, default=(1, 1), help="engine replicas: N or MIN,MAX (autoscaling)")
    vllm.add_argument("--no-prefix-caching", action="store_true", help="turn vLLM's prefix caching off")
    vllm.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    vllm.add_argument("--accelerator-type", default=None, help="e.g. H100 (a Ray accelerator type)")
    parser.add_argument("--ray-address", default=None, help="a Ray cluster (default: RAY_ADDRESS or a local Ray)")


def run(args: argparse.Namespace) -> int:
    from lsr import console
    from lsr.mining.cli_support import job_from_args
    from lsr.mining.pipeline import run_mining
    from lsr.ray_utils import init_ray

    job = job_from_args(args)
    started = console.header(
        "mine", f"{args.input} -> {args.output}, engine {job.engine_name}, dataset {args.dataset}"
        + (f", first {args.limit} documents" if args.limit else "")
    )
    init_ray(address=args.ray_address)
    # The rows already written to the output folder: what a kill would keep (and a resumed run would skip).
    seen: dict = {}
    with console.Progress("documents mined") as bar, console.Poll(bar, lambda: console.parquet_rows(args.output, seen)):
        report = run_mining(job)
    console.summary(started, report.summary_line(), wrote=[args.output, *report_paths(args.output)])
    if not report.complete:
        console.warn("the output is incomplete (see the report); run the same command again to resume")
    return 0 if report.complete else 1


def report_paths(output: str) -> list[str]:
    base = output.rstrip("/")
    return [f"{base}.report.json", f"{base}.report.md"]
