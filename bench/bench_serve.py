"""Serving throughput and latency: batching on and off at several concurrencies, against in-process ``generate``.

One run measures, on one local Ray Serve over loopback (one replica, ``--num-cpus`` cores and as many torch threads):

- requests/s and p50/p99 latency (client side) at each ``--concurrency``, with ``@serve.batch`` on
  (``--max-batch-size``) and off (max batch size 1), one document per request, closed-loop clients;
- the batch sizes the replica reported (mean), and the replica's resident memory (now and peak);
- the limit: the same model's in-process batched ``generate`` (``lsr.model.generate.generate``) at each
  concurrency as batch size, on as many torch threads as the replica has.

Every request generates exactly ``--gen-tokens`` tokens (min = max), so all requests cost the same. Goals:
batched / unbatched throughput >= 3x at concurrency 32; p99 <= 2x p50 at concurrency 32 batched; served
throughput >= 0.8 of in-process generate at batch 32. The load generator runs on the same machine as the server.

    python bench/bench_serve.py                                   # the tiny student, built here
    python bench/bench_serve.py --model RUN/model --dataset cnndm --beams 4 --gen-tokens 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.helpers: the tiny student, free ports, the shipped samples

from tests.helpers.paths import sample_documents  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402
from tests.helpers.tiny_student import save_tiny_student  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a checkpoint folder (default: a tiny MWF student built here)")
    p.add_argument("--dataset", default="xsum", choices=("cnndm", "xsum"), help="generation preset")
    p.add_argument("--beams", type=int, default=2)
    p.add_argument("--gen-tokens", type=int, default=16, help="new tokens per summary (min = max: equal work)")
    p.add_argument("--source-tokens", type=int, default=256, help="document truncation")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--rounds", type=int, default=6, help="requests per client at each concurrency")
    p.add_argument("--min-requests", type=int, default=24, help="at least this many requests per measurement")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-wait-s", type=float, default=0.01)
    p.add_argument("--num-cpus", type=int, default=1, help="replica cores = torch threads, here and in-process")
    p.add_argument("--inprocess-reps", type=int, default=3, help="timed generate() calls per batch size")
    p.add_argument("--output", default=None, help="also write the figures as JSON here")
    return p.parse_args(argv)


async def load(url: str, docs: list[str], concurrency: int, total: int, body: dict[str, Any]) -> dict[str, Any]:
    """``total`` requests from ``concurrency`` closed-loop clients; throughput, latency percentiles, batch sizes."""
    import aiohttp

    latencies: list[float] = []
    batch_sizes: list[int] = []
    counter = iter(range(total))

    async def client(session: aiohttp.ClientSession) -> None:
        for i in counter:
            t0 = time.perf_counter()
            async with session.post(url, json={**body, "text": docs[i % len(docs)]}) as answer:
                payload = await answer.json()
                if answer.status != 200:
                    raise RuntimeError(f"{answer.status}: {payload}")
            latencies.append(time.perf_counter() - t0)
            batch_sizes.append(payload["summaries"][0]["batch_size"])

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": total,
        "rps": total / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_batch": statistics.fmean(batch_sizes),
        "max_batch": max(batch_sizes),
    }


def replica_memory_mb(base: str) -> dict[str, float]:
    """The replica's resident memory now and at its peak, as its ``GET /model`` reports them."""
    import requests

    return requests.get(f"{base}/model", timeout=60).json()["replica_memory"]


def serve_runs(args: argparse.Namespace, model: str, docs: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from ray import serve

    from lsr.core.ray_utils import init_ray
    from lsr.serving.app import build_app
    from lsr.serving.config import ServeConfig

    init_ray()
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    body = {"num_beams": args.beams, "min_new_tokens": args.gen_tokens, "max_new_tokens": args.gen_tokens}
    rows, memory = [], {}
    try:
        for mode, batch in (("batched", args.max_batch_size), ("unbatched", 1)):
            config = ServeConfig.model_validate(
                {
                    "model": model,
                    "dataset": args.dataset,
                    "source_max_tokens": args.source_tokens,
                    "batching": {"max_batch_size": batch, "batch_wait_timeout_s": args.batch_wait_s},
                    "num_cpus": float(args.num_cpus),
                    "max_ongoing_requests": max(args.concurrency) * 2,
                    "limits": {"max_new_tokens": max(args.gen_tokens, 256), "max_num_beams": max(args.beams, 8)},
                    "auth_token_env": "LSR_BENCH_NO_TOKEN",
                }
            )
            serve.run(build_app(config), name=mode, route_prefix=f"/{mode}")
            base = f"http://127.0.0.1:{port}/{mode}"
            url = f"{base}/summarize"
            asyncio.run(load(url, docs, 4, 8, body))  # warm-up
            for c in args.concurrency:
                total = max(c * args.rounds, args.min_requests)
                row = {"mode": mode, **asyncio.run(load(url, docs, c, total, body))}
                rows.append(row)
                print(f"  {mode:9s} c={c:<3d} {row['rps']:7.2f} req/s  p50 {row['p50_ms']:8.1f} ms  "
                      f"p99 {row['p99_ms']:8.1f} ms  mean batch {row['mean_batch']:.1f}", flush=True)  # fmt: skip
            memory[mode] = replica_memory_mb(base)
            serve.delete(mode)
    finally:
        serve.shutdown()
    return rows, memory


def in_process(args: argparse.Namespace, model_path: str, docs: list[str]) -> list[dict[str, Any]]:
    """Documents/s of the model layer's ``generate`` at each concurrency as batch size, best of the reps."""
    import torch

    from lsr.core.config import preset
    from lsr.model.generate import generate, load_summarizer

    torch.set_num_threads(args.num_cpus)
    model, tokenizer = load_summarizer(model_path)
    settings = {**preset(args.dataset).generation.as_generate_kwargs(), "num_beams": args.beams,
                "min_new_tokens": args.gen_tokens, "max_new_tokens": args.gen_tokens}  # fmt: skip
    rows = []
    for size in args.concurrency:
        batch = [docs[i % len(docs)] for i in range(size)]
        generate(model, tokenizer, batch, source_max_tokens=args.source_tokens, generation_kwargs=settings)
        times = []
        for _ in range(args.inprocess_reps):
            t0 = time.perf_counter()
            generate(model, tokenizer, batch, source_max_tokens=args.source_tokens, generation_kwargs=settings)
            times.append(time.perf_counter() - t0)
        rows.append({"batch": size, "docs_per_s": size / min(times), "ms_per_batch": 1000 * min(times)})
    return rows


def report(rows: list[dict[str, Any]], memory: dict[str, Any], local: list[dict[str, Any]]) -> dict[str, Any]:
    print("\n| mode | concurrency | req/s | p50 ms | p99 ms | mean batch | max batch |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['concurrency']} | {r['rps']:.2f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
              f"| {r['mean_batch']:.1f} | {r['max_batch']} |")  # fmt: skip
    print("\n| in-process generate | batch | docs/s | ms per batch |")
    print("|---|---:|---:|---:|")
    for r in local:
        print(f"| generate | {r['batch']} | {r['docs_per_s']:.2f} | {r['ms_per_batch']:.1f} |")
    print("\n| replica | RSS MB | peak RSS MB |\n|---|---:|---:|")
    for mode, m in memory.items():
        print(f"| {mode} | {m['rss_mb']:.0f} | {m['peak_rss_mb']:.0f} |")
    top = max(r["concurrency"] for r in rows)
    at = {r["mode"]: r for r in rows if r["concurrency"] == top}
    limit = next((r for r in local if r["batch"] == top), None)
    goals = {
        f"batched/unbatched req/s at c={top} (goal >= 3)": at["batched"]["rps"] / at["unbatched"]["rps"],
        f"batched p99/p50 at c={top} (goal <= 2)": at["batched"]["p99_ms"] / at["batched"]["p50_ms"],
    }
    if limit:
        goals[f"served/in-process throughput at {top} (goal >= 0.8)"] = at["batched"]["rps"] / limit["docs_per_s"]
    print()
    for name, value in goals.items():
        print(f"{name}: {value:.2f}")
    return goals


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    docs = sample_documents()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or save_tiny_student(Path(tmp) / "tiny")
        rows, memory = serve_runs(args, model, docs)
        local = in_process(args, model, docs)
    goals = report(rows, memory, local)
    if args.output:
        payload = {"args": vars(args), "serve": rows, "memory": memory, "in_process": local, "goals": goals}
        Path(args.output).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
