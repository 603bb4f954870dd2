"""Mining against a server with an LLM's latency: does ``lsr mine --engine http`` keep the in-flight budget full?

A server that answers at once would show only the client's overhead. Here a loopback OpenAI-compatible server
(``tests/helpers/openai_stub_server.py``'s stub, fixed parsable answers) holds every request for ``--latency``
seconds, optionally with at most ``--server-limit`` requests served at once (later ones queue, as behind a saturated
vLLM), and samples how many requests it holds every 0.05 s. The same documents go through

- a bare asyncio client: two requests per document (call B after call A's reply is parsed), ``--in-flight``
  requests at most, and
- ``lsr mine --engine http --max-in-flight N`` run as a user runs it (its own process, Ray started by it, every
  other flag at its default), so the time includes Ray's start-up, reading, parsing and writing.

Ideal time: ``2 x documents x latency / in-flight``. The table prints bare / pipeline (the goal: >= 0.85 at
8,192 documents, 1 s, 256) and the server's in-flight samples (median, max, and a coarse time line).

    python bench/bench_mine_latency.py --docs 512 --latency 0.5 --in-flight 64

Measured here (Ray 2.60, the idle 2-core machine, every ``lsr mine`` flag at its default but ``--max-in-flight``):

| documents | latency | in flight | ideal | bare asyncio | ``lsr mine`` | bare / lsr | configuration |
|---:|---:|---:|---:|---:|---:|---:|---|
| 8,192 | 1.0 s | 256 | 64.0 s | 64.9 s | 191.6 s | 0.34 | two chained ``ray.data.llm`` processors |
| 8,192 | 1.0 s | 256 | 64.0 s | 66.3 s | 88.3 s | 0.75 | one stage per document (``document_stage``) |
| 8,192 | 1.0 s | 256 | 64.0 s | 66.3 s | 82.1 s | 0.81 | + the index pass on the driver, ``lsr`` imports no torch |
| 8,192 | 1.0 s | 256 | 64.0 s | 66.4 s | 78.0 s | 0.85 | + two tasks per actor on two concurrency slots |
| 8,192 | 1.0 s | 256 | 64.0 s | 66.1-66.9 s | 74.1-75.9 s | 0.87-0.90 | + prompts fitted before repartitioning |

The last rows, one step at a time (the script prints where ``lsr mine``'s time goes: before the first request,
while requests run, after the last reply):

- *Block boundaries.* Sampled every 20 ms, the server's in-flight count fell to 0 for 0.2-0.3 s whenever an actor's
  task (one block) ended: Ray Data dispatched the next block only when the current one returned. A second task per
  actor did not help until the actor could run two calls at once (Ray Data's actors run one by default, so the
  second task queued behind the first). With both (``actor_pool.TASKS_PER_ACTOR``) the requests phase holds
  252-253 of 256 on average and lasts 64.9-65.4 s, as long as the bare client's (65.7-66.6 s).
- *The first request.* It came 9.9-10.1 s after the start at 8,192 documents against 6.6 s at 1,024: the corpus is
  one file, read as one block; the repartition into blocks of one budget hands its 32 blocks out about 0.1 s apart,
  and the prompt-fitting tasks placed after it waited for all of them. Fitting the prompts in the read task, before
  the repartition, lets the actors (which hold their resources already) take each block as it comes: 6.5-8.0 s then,
  the same as at 2,048 documents (6.6-7.8 s over three runs): ``ray.init`` (about 3 s), Ray's worker processes
  and the stage's actor starting on 2 cores (about 2 s), the first block read and prepared. Ray's ``read_json``
  also parsed the file whole in one task; :mod:`lsr.data.json_lines_source` streams it (worker memory at 65,536
  documents in one file: 1,272 MiB with ``read_json``, 451 MiB with the stream).
- *After the last reply*, 2.6-2.9 s: the report, Ray's shutdown (1.1-1.4 s of it) and the interpreter's exit.

So at this scale the loss left is Ray's fixed start and stop (about 9-10 s against the bare client's 0.3 s), which
a longer corpus amortises: the requests phase itself runs at the bare client's speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' stub server: tests/helpers/openai_stub_server.py

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from lsr.core.config import preset  # noqa: E402
from lsr.mining.parse import parse_rationale  # noqa: E402
from lsr.mining.prompts import format_rationale, rationale_messages, summaries_messages  # noqa: E402
from tests.helpers.openai_stub_server import OpenAIStub  # noqa: E402

SAMPLES = REPO / "lsr" / "samples" / "cnndm_sample.jsonl"


class LatencyServer(OpenAIStub):
    """The stub with a fixed latency per request, an optional concurrency limit, and in-flight sampling."""

    def __init__(self, latency: float, limit: int | None, sample_every: float = 0.05):
        super().__init__("cnndm", instant=True)
        self.latency = latency
        self.limit = limit
        self.sample_every = sample_every
        self.samples: list[tuple[float, int]] = []
        self._sampling = threading.Event()
        self._gate: asyncio.Semaphore | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        if self._gate is None and self.limit:
            self._gate = asyncio.Semaphore(self.limit)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)
        try:
            if self._gate is not None:
                async with self._gate:
                    await asyncio.sleep(self.latency)
            else:
                await asyncio.sleep(self.latency)
            return await self._answer(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def record(self) -> None:
        """Sample ``in_flight`` until :meth:`stop_recording`; samples are (seconds since start, requests)."""
        self.samples = []
        self._sampling.set()
        start = time.monotonic()

        def loop() -> None:
            while self._sampling.is_set():
                self.samples.append((time.monotonic() - start, self.in_flight))
                time.sleep(self.sample_every)

        threading.Thread(target=loop, daemon=True).start()

    def stop_recording(self) -> list[tuple[float, int]]:
        self._sampling.clear()
        time.sleep(2 * self.sample_every)
        return list(self.samples)


def load_docs(n: int) -> list[dict]:
    """``n`` documents cycled from the 40 shipped CNN/DM rows, each copy with its own id."""
    base = [json.loads(x) for x in SAMPLES.read_text().splitlines() if x.strip()]
    return [{**base[i % len(base)], "id": f"{base[i % len(base)]['id']}-{i}"} for i in range(n)]


async def bare_client(url: str, docs: list[dict], in_flight: int) -> float:
    """Two requests per document with aiohttp alone, ``in_flight`` at most; returns seconds."""
    mining = preset("cnndm").mining
    slots = asyncio.Semaphore(in_flight)

    async def post(session: aiohttp.ClientSession, payload: dict) -> str:
        async with slots, session.post(url, json=payload) as response:
            return (await response.json())["choices"][0]["message"]["content"]

    async def one(session: aiohttp.ClientSession, doc: dict) -> None:
        messages = rationale_messages(doc["document"], doc["summary"], "cnndm")
        a = {"model": "m", "messages": messages, "temperature": 0.0, "max_tokens": mining.rationale_max_tokens}
        r = parse_rationale(await post(session, a), "cnndm")
        rationale = format_rationale(r.aspects, r.sentences, r.triples, "cnndm")
        messages = summaries_messages(doc["document"], rationale, "cnndm")
        await post(session, {"model": "m", "messages": messages, "temperature": 0.0, "max_tokens": 512})

    start = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session, d) for d in docs))
    return time.perf_counter() - start


def run_lsr_mine(url: str, path: Path, out: Path, in_flight: int, extra: list[str]) -> float:
    """``lsr mine --engine http`` as a user runs it, in its own process; returns seconds."""
    command = [sys.executable, "-c", "from lsr.cli.main import main; main()", "mine", "--input", str(path)]
    command += ["--output", str(out), "--dataset", "cnndm"]
    command += ["--engine", "http", "--url", url, "--model", "m", "--api-key-env", "LSR_BENCH_NO_KEY"]
    command += ["--max-in-flight", str(in_flight), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"lsr mine failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(Path(str(out) + ".report.json").read_text())
    if report.get("failed"):
        raise SystemExit(f"lsr mine left {report['failed']} failed row(s): {report}")
    return seconds


def describe(samples: list[tuple[float, int]], buckets: int = 12) -> str:
    """Median and max of the in-flight samples taken while requests were running, and a coarse time line."""
    busy = [n for _, n in samples if n]
    if not busy:
        return "no request seen"
    end = samples[-1][0] or 1.0
    line = []
    for b in range(buckets):
        chunk = [n for t, n in samples if b * end / buckets <= t < (b + 1) * end / buckets]
        line.append(str(round(statistics.mean(chunk))) if chunk else "-")
    return f"median {statistics.median(busy):.0f}, max {max(busy)}; over time: {' '.join(line)}"


def phases(samples: list[tuple[float, int]], total: float) -> str:
    """Where a run's time goes: before the first request, while requests run (and how full the budget is then),
    and after the last reply (the report, Ray's shutdown, the interpreter's exit)."""
    busy = [(t, n) for t, n in samples if n]
    if not busy:
        return "no request seen"
    first, last = busy[0][0], busy[-1][0]
    during = [n for t, n in samples if first <= t <= last]
    return (
        f"first request at {first:.1f} s; requests for {last - first:.1f} s, {statistics.mean(during):.0f} in flight "
        f"on average; exit {total - last:.1f} s after the last reply"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=512)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the server holds each request")
    parser.add_argument("--in-flight", type=int, default=64, help="in-flight budget (--max-in-flight for lsr mine)")
    parser.add_argument("--server-limit", type=int, default=None, help="requests the server serves at once")
    parser.add_argument("--mine-flag", action="append", default=[], help="extra flag for lsr mine (repeatable)")
    parser.add_argument("--skip-bare", action="store_true")
    args = parser.parse_args()
    docs = load_docs(args.docs)
    ideal = 2 * args.docs * args.latency / args.in_flight
    with tempfile.TemporaryDirectory() as tmp, LatencyServer(args.latency, args.server_limit) as server:
        path = Path(tmp) / "docs.jsonl"
        path.write_text("".join(json.dumps(d) + "\n" for d in docs))
        bare_s, bare_line, bare_phases = float("nan"), "-", "-"
        if not args.skip_bare:
            server.record()
            bare_s = asyncio.run(bare_client(server.url + "/chat/completions", docs, args.in_flight))
            bare_samples = server.stop_recording()
            bare_line, bare_phases = describe(bare_samples), phases(bare_samples, bare_s)
        server.record()
        mine_s = run_lsr_mine(server.url, path, Path(tmp) / "out", args.in_flight, args.mine_flag)
        mine_samples = server.stop_recording()
        mine_line = describe(mine_samples)
    print("| documents | latency | in flight | ideal | bare asyncio | `lsr mine` | bare / lsr |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.docs:,} | {args.latency} s | {args.in_flight} | {ideal:.1f} s | {bare_s:.1f} s | {mine_s:.1f} s "
        f"| {bare_s / mine_s:.2f} |"
    )
    print(f"in flight at the server, bare client: {bare_line}")
    print(f"bare client's time: {bare_phases}")
    print(f"in flight at the server, lsr mine:    {mine_line}")
    print(f"lsr mine's time: {phases(mine_samples, mine_s)}")
    if args.mine_flag:
        print(f"lsr mine extra flags: {' '.join(args.mine_flag)}")


if __name__ == "__main__":
    main()
