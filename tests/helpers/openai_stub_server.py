"""A small OpenAI-compatible chat-completions server on 127.0.0.1, for the mining tests and the benchmark.

It answers call A with a rationale and call B with summaries built by the oracle from the prompt itself,
written in the styles real models use (numbered, bulleted, bold, with preambles and notes, XSum's reversed
order), and lets a test plan faults per document: a refusal, unparsable summaries, HTTP 500 on every
attempt, or transient 500/429 answers before a good one. It records every request, can stop answering after
N replies (to kill a job mid-way), and checks the bearer key when given one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from lsr.mining.oracle import OracleRationale, oracle_rationale, oracle_summaries, render_summaries
from lsr.mining.parse import parse_rationale
from lsr.mining.prompts import format_rationale

REFUSAL = "I'm sorry, but I can't help with that request."
INSTANT_RATIONALE = "Topic | The council approved the budget. | <council # approved # budget>"
INSTANT_SUMMARIES = "Multiple sub-summaries:\n1. The council approved the budget.\n\nSummary: The budget passed."


def doc_key(document: str) -> str:
    return hashlib.sha1(document.strip().encode("utf-8")).hexdigest()[:12]


def _split_prompt(content: str) -> tuple[str, str, str | None]:
    """(call, document, summary or rationale) from the user message the prompts module writes."""
    body = content[len("Article:\n") :] if content.startswith("Article:\n") else content
    if "\n\nReference summary:\n" in body:
        document, rest = body.rsplit("\n\nReference summary:\n", 1)
        return "rationale", document, rest.split("\n\n", 1)[0]
    document, _, rest = body.rpartition("\n\nRationale (")
    rationale = rest.split(":\n", 1)[1].split("\n\nTask", 1)[0] if ":\n" in rest else ""
    return "summaries", document, rationale


def styled_rationale(rationale: OracleRationale, dataset: str, style: int) -> str:
    """The oracle's rationale in one of several real-model styles."""
    plain = format_rationale(rationale.aspects, rationale.sentences, rationale.triples, dataset).split("\n")
    if dataset == "xsum":
        return (
            ["", "Rationale: ", "**Rationale:** "][style % 3]
            + plain[0]
            + ("\n\nThis rationale captures the key event described in the summary." if style % 2 else "")
        )
    if style % 4 == 1:
        return "Here is the rationale for the summary:\n\nRationale:\n" + "\n".join(
            f"{i}. {line}" for i, line in enumerate(plain, 1)
        )
    if style % 4 == 2:
        lines = []
        for aspect, sentence, triples in zip(rationale.aspects, rationale.sentences, rationale.triples, strict=True):
            t = ", ".join(f"[{s} # {r} # {o}]" for s, r, o in triples)
            lines.append(f"- **{aspect}** | {sentence} | {t}")
        return "**Rationale:**\r\n\r\n" + "\r\n".join(lines)
    if style % 4 == 3:
        return "\n".join(plain) + "\n\nNote: each line follows the order of the summary."
    return "\n".join(plain)


def styled_summaries(subs: list[str], total: str, dataset: str, style: int) -> str:
    if dataset == "xsum" or not subs:
        return f"Summary: {total}" if style % 2 == 0 else f"Here is the summary:\n\n{total}"
    if style % 2:
        bullets = "\n".join(f"- {s}" for s in subs)
        return f"### Multiple sub-summaries\n{bullets}\n\n### Summary\n{total}"
    return render_summaries(subs, total, dataset)


@dataclass
class Plan:
    """Faults per document key: each set names the documents that get that fault."""

    refuse: set[str] = field(default_factory=set)  # call A answers a refusal
    garble_summaries: set[str] = field(default_factory=set)  # call B answers nothing usable
    always_500: set[str] = field(default_factory=set)  # call A fails on every attempt
    transient: dict[str, list[int]] = field(default_factory=dict)  # statuses before a good answer, per call
    fail_status: int | None = None  # every request answered with this status (e.g. 500 or 401)
    echo_auth_at: int | None = None  # failures echo the Authorization header at this character of the body


class OpenAIStub:
    """Run with ``with OpenAIStub(...) as stub: stub.url``; ``stub.requests`` lists (call, key, status) of the
    requests answered, ``stub.received`` counts every request that arrived."""

    def __init__(
        self,
        dataset: str = "cnndm",
        *,
        plan: Plan | None = None,
        api_key: str | None = None,
        stop_after: int | None = None,
        instant: bool = False,
        port: int = 0,
        delay: float = 0.0,
    ):
        self.dataset = dataset
        self.plan = plan or Plan()
        self.api_key = api_key
        self.stop_after = stop_after
        self.instant = instant  # a fixed, tiny answer: measures the client side only
        self.delay = delay  # seconds each request is held before its answer (to measure requests in flight)
        self.in_flight = 0
        self.max_in_flight_seen = 0
        #: Every request that reached the server, also those whose client went away before its answer (they are
        #: not in ``requests``, which records what was answered); ``arrivals`` their (call, key), as they came.
        self.received = 0
        self.arrivals: list[tuple[str, str]] = []
        self.port = port
        self.requests: list[tuple[str, str, int]] = []
        self.answered = 0
        self.seen_headers: list[dict[str, str]] = []
        self._attempts: Counter = Counter()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> OpenAIStub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the stub server did not start")

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._release.set)
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    # ------------------------------------------------------------------ answering
    def calls_for(self, key: str) -> list[str]:
        return [call for call, k, status in self.requests if k == key and status == 200]

    async def _handle(self, request: web.Request) -> web.Response:
        with self._lock:
            self.received += 1
            self.in_flight += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)
        try:
            if not self.instant:
                await self._note_arrival(request)
            if self.delay:
                await asyncio.sleep(self.delay)
            return await self._answer(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _note_arrival(self, request: web.Request) -> None:
        """Record (call, key) of a request as it arrives, before any delay (aiohttp keeps the body for _answer)."""
        try:
            content = (await request.json())["messages"][-1]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return
        call, document, _ = _split_prompt(content)
        with self._lock:
            self.arrivals.append((call, doc_key(document)))

    def completed(self) -> set[str]:
        """Keys of the documents whose call B was answered (finished at the server)."""
        return {k for call, k, status in list(self.requests) if call == "summaries" and status == 200}

    async def _answer(self, request: web.Request) -> web.Response:
        self.seen_headers.append(dict(request.headers))
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "invalid api key"}}, status=401)
        body = await request.json()
        content = body["messages"][-1]["content"]
        if self.instant:
            text = INSTANT_RATIONALE if "\n\nReference summary:\n" in content else INSTANT_SUMMARIES
            return self._reply(body, text, content)
        call, document, extra = _split_prompt(content)
        key = doc_key(document)
        with self._lock:
            if self.stop_after is not None and self.answered >= self.stop_after:
                blocked = True
            else:
                blocked = False
                attempt = self._attempts[(call, key)]
                self._attempts[(call, key)] += 1
        if blocked:
            await self._release.wait()  # hold the request: the job stalls here until it is killed
            return web.Response(text="stub stopped", status=503)
        status = 200
        if self.plan.fail_status is not None:
            status = self.plan.fail_status
        elif call == "rationale" and key in self.plan.always_500:
            status = 500
        elif attempt < len(self.plan.transient.get(key, [])):
            status = self.plan.transient[key][attempt]
        self.requests.append((call, key, status))
        if status != 200:
            if status == 429:
                return web.json_response(
                    {"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "0"}
                )
            if self.plan.echo_auth_at is not None:
                body = "x" * self.plan.echo_auth_at + request.headers.get("Authorization", "") + " (echoed)"
                return web.Response(text=body, status=status)
            return web.Response(text="Internal Server Error", status=status)
        style = int(key, 16)
        if call == "rationale":
            text = REFUSAL if key in self.plan.refuse else self._rationale(document, extra or "", style)
        else:
            text = "..." if key in self.plan.garble_summaries else self._summaries(extra or "", style)
        with self._lock:
            self.answered += 1
        return self._reply(body, text, content)

    def _rationale(self, document: str, summary: str, style: int) -> str:
        return styled_rationale(oracle_rationale(document, summary, self.dataset), self.dataset, style)

    def _summaries(self, rationale_text: str, style: int) -> str:
        parsed = parse_rationale(rationale_text, self.dataset)
        rationale = OracleRationale(parsed.aspects, parsed.sentences, parsed.triples)
        subs, total = oracle_summaries(rationale, self.dataset)
        return styled_summaries(subs, total, self.dataset, style)

    @staticmethod
    def _reply(body: dict, text: str, prompt: str) -> web.Response:
        prompt_tokens = sum(len(re.findall(r"\S+", m["content"])) for m in body["messages"])
        return web.json_response(
            {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "stub"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(text.split()),
                    "total_tokens": prompt_tokens + len(text.split()),
                },
            }
        )


TOWNS = ["Arden", "Brill", "Calder", "Dunmore", "Esk", "Fenwick", "Garth", "Holt"]


def tiny_documents(n: int) -> list[dict]:
    """``n`` short CNN/DM-like documents, each with its own words (ids ``doc-000``...), that the stub's oracle
    answers well."""
    rows = []
    for i in range(n):
        town = f"{TOWNS[i % len(TOWNS)]} {i}"
        document = (f"The council of {town} approved a budget of {i + 3} million on Monday. Critics said the plan "
                    f"cuts {i % 7 + 2} bus routes in the north. The mayor of {town} promised a review of the routes "
                    f"in spring. Local shops welcomed parking fees lower by {i % 5 + 1} percent.")
        summary = f"{town} council approved a {i + 3} million budget.\nThe mayor promised a review of bus routes."
        rows.append({"id": f"doc-{i:03d}", "document": document, "summary": summary})
    return rows


def serve_forever(dataset: str, port: int, stop_after: int | None, plan_json: str | None) -> None:
    """Entry point for a stub in its own process (``python -m tests.helpers.openai_stub_server``)."""
    plan = (
        Plan(**{k: set(v) if isinstance(v, list) else v for k, v in json.loads(plan_json).items()})
        if plan_json
        else None
    )
    with OpenAIStub(dataset, plan=plan, stop_after=stop_after, port=port) as stub:
        print(stub.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="cnndm")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stop-after", type=int)
    parser.add_argument("--plan")
    a = parser.parse_args()
    serve_forever(a.dataset, a.port, a.stop_after, a.plan)
