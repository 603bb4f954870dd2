"""Documents per second through the HTTP engine, next to a plain asyncio client on the same requests.

Both talk to a loopback OpenAI-compatible server that answers at once (a fixed, parsable rationale and
summaries), so the figures measure the client side: Ray Data + ray.data.llm + parsing and writing, against
the least a client can do (two chat requests per document, the second after the first, the same number in
flight). The ratio asyncio / pipeline is the pipeline's overhead. It also prints prompt tokens per document
relative to the document's own tokens (whitespace tokens, as the stub counts them), i.e. what the two
prompts cost on top of sending the document once.

    python bench/bench_mine_http.py [--docs 256] [--in-flight 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import aiohttp  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from openai_stub_server import OpenAIStub  # noqa: E402

from lsr.config import preset  # noqa: E402
from lsr.mining.budget import TokenBudget  # noqa: E402
from lsr.mining.engines import HttpEngineConfig  # noqa: E402
from lsr.mining.pipeline import MineJob, run_mining  # noqa: E402
from lsr.model.loading import SAMPLES_DIR  # noqa: E402
from lsr.parse import parse_rationale  # noqa: E402
from lsr.prompts import format_rationale, rationale_messages, summaries_messages  # noqa: E402


def load_docs(n: int) -> list[dict]:
    """``n`` documents cycled from the 40 shipped CNN/DM rows, each copy with its own id."""
    base = [json.loads(x) for x in (SAMPLES_DIR / "cnndm_sample.jsonl").read_text().splitlines() if x.strip()]
    return [{**base[i % len(base)], "id": f"{base[i % len(base)]['id']}-{i}"} for i in range(n)]


async def plain_client(url: str, docs: list[dict], in_flight: int) -> float:
    """The same two requests per document with aiohttp alone; returns seconds."""
    mining = preset("cnndm").mining
    slots = asyncio.Semaphore(in_flight)

    async def one(session: aiohttp.ClientSession, doc: dict) -> None:
        async with slots:
            a = {
                "model": "m",
                "messages": rationale_messages(doc["document"], doc["summary"], "cnndm"),
                "temperature": 0.0,
                "max_tokens": mining.rationale_max_tokens,
            }
            async with session.post(url, json=a) as response:
                text = (await response.json())["choices"][0]["message"]["content"]
            r = parse_rationale(text, "cnndm")
            rationale = format_rationale(r.aspects, r.sentences, r.triples, "cnndm")
            b = {
                "model": "m",
                "messages": summaries_messages(doc["document"], rationale, "cnndm"),
                "temperature": 0.0,
                "max_tokens": mining.summaries_max_tokens,
            }
            async with session.post(url, json=b) as response:
                await response.json()

    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, d) for d in docs))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    from lsr.ray_utils import init_ray

    init_ray()
    docs = load_docs(args.docs)
    mining = preset("cnndm").mining
    with tempfile.TemporaryDirectory() as tmp, OpenAIStub("cnndm", instant=True) as stub:
        path = Path(tmp) / "docs.jsonl"
        path.write_text("".join(json.dumps(d) + "\n" for d in docs))
        plain_s = asyncio.run(plain_client(stub.url + "/chat/completions", docs, args.in_flight))
        engine = HttpEngineConfig(
            url=stub.url,
            model="m",
            api_key_env="LSR_BENCH_NO_KEY",
            batch_size=args.batch_size,
            max_in_flight=args.in_flight,
        )
        budget = TokenBudget(8192, mining.rationale_max_tokens, mining.summaries_max_tokens)
        job = MineJob(
            str(path), str(Path(tmp) / "out"), "cnndm", mining, engine, budget, rows_per_file=args.batch_size * 4
        )
        start = time.perf_counter()
        report = run_mining(job)
        pipeline_s = time.perf_counter() - start
        table = pq.read_table(Path(tmp) / "out", columns=["document", "prompt_tokens"]).to_pylist()
    assert report.complete and report.failed == 0, report.summary_line()
    doc_tokens = sum(len(r["document"].split()) for r in table)
    prompt_tokens = sum(r["prompt_tokens"] for r in table)
    print(f"documents: {len(docs)}, two requests each, {args.in_flight} in flight")
    print(f"plain asyncio client: {len(docs) / plain_s:8.1f} docs/s ({plain_s:.2f} s)")
    print(
        f"lsr mine --engine http: {len(docs) / pipeline_s:6.1f} docs/s ({pipeline_s:.2f} s, whole job incl. "
        f"reading, writing, report)"
    )
    print(f"overhead ratio (pipeline time / asyncio time): {pipeline_s / plain_s:.1f}x")
    print(
        f"prompt tokens per document: {prompt_tokens / len(table):.0f}; document tokens: {doc_tokens / len(table):.0f};"
        f" ratio {prompt_tokens / doc_tokens:.2f} (two calls, each with the document)"
    )


if __name__ == "__main__":
    main()
