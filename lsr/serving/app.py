"""The Ray Serve application: a FastAPI ingress on one deployment that batches documents across requests.

Shaped like Ray Serve's own examples: ``@serve.ingress(api)`` on the deployment class, ``@serve.batch`` on the
model method, replicas or autoscaling in the deployment options, and :func:`build_app`, an application builder
that ``lsr serve``, ``serve run`` and ``serve deploy`` (through a config YAML's ``args:``) all call.

Readiness: the model loads in the replica's constructor, and Serve routes no request to a replica before its
constructor returns, so ``GET /healthz`` answering 200 means the model is loaded. Shutdown: Serve stops routing
to a replica and lets its in-flight requests finish for up to ``graceful_shutdown_timeout_s``.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the route annotations (Request) through
# the methods Serve wraps, which string annotations break (every route answered 422 "query.request missing").

import asyncio
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from ray import serve
from ray.serve import Application

from lsr.core.errors import InputError
from lsr.serving.auth import authorized, token_digest
from lsr.serving.config import DEPLOYMENT_NAME, Batching, ServeConfig
from lsr.serving.page import PAGE
from lsr.serving.schema import RequestError, SummarizeRequest, SummarizeResponse, Summary, Timings, parse_request
from lsr.serving.summarizer import (
    Document,
    Generated,
    ServedModel,
    check_servable,
    generation_key,
    process_memory_mb,
)

logger = logging.getLogger("ray.serve")

api = FastAPI(
    title="lsr summarizer",
    description="Summaries from a distilled BART / MWF student. POST /summarize; GET /healthz, /model.",
)

#: The documented request body (the handler parses the body itself to give one-line errors; see schema.py).
_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": SummarizeRequest.model_json_schema()}},
    }
}


_BATCHING = Batching()


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@serve.deployment(name=DEPLOYMENT_NAME)
@serve.ingress(api)
class Summarizer:
    """One replica: the model on this replica's device, a batch queue, and the HTTP routes."""

    def __init__(self, config: ServeConfig, auth_digest: str | None = None):
        import torch

        device = "cuda" if config.gpu and torch.cuda.is_available() else "cpu"
        self.config = config
        self.auth_digest = auth_digest
        self.model = ServedModel(config, device)
        self.info = self.model.info()
        self.summarize_batch.set_max_batch_size(config.batching.max_batch_size)
        self.summarize_batch.set_batch_wait_timeout_s(config.batching.batch_wait_timeout_s)
        logger.info(
            "lsr serve: model %s loaded on %s (auth %s)", self.model.model_id, device, "on" if auth_digest else "off"
        )

    # The config's defaults; __init__ applies this server's settings (serve.batch takes no per-instance values).
    @serve.batch(max_batch_size=_BATCHING.max_batch_size, batch_wait_timeout_s=_BATCHING.batch_wait_timeout_s)
    async def summarize_batch(self, documents: list[Document]) -> list[Generated]:
        # generate() runs in a thread, so the event loop keeps answering probes and forming the next batch.
        return await asyncio.to_thread(self.model.summarize, documents)

    # ---- routes -------------------------------------------------------------------------------------------

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(self) -> HTMLResponse:
        return HTMLResponse(PAGE)

    @api.get("/healthz")
    async def healthz(self) -> dict[str, Any]:
        """Readiness: answers only from a replica whose model is loaded (no token needed)."""
        return {"status": "ok", "model": self.model.model_id, "loaded": True}

    @api.get("/model")
    async def model_info(self, request: Request) -> Any:
        """The model's config, views, gates, generation defaults, limits, training metadata, replica memory."""
        if not authorized(request.headers.get("authorization"), self.auth_digest):
            return _error(401, "missing or wrong bearer token")
        return {**self.info, "auth": self.auth_digest is not None, "replica_memory": process_memory_mb()}

    @api.post("/summarize", response_model=SummarizeResponse, openapi_extra=_REQUEST_BODY)
    async def summarize(self, request: Request) -> Any:
        """Summaries of ``text`` or ``texts``; each document joins the replica's next batch."""
        started = time.perf_counter()
        if not authorized(request.headers.get("authorization"), self.auth_digest):
            return _error(401, "missing or wrong bearer token")
        try:
            parsed = parse_request(await read_body(request, self.config.limits.max_body_bytes), self.config.limits)
            settings = self.model.generation_for(parsed.generation_overrides())
            if parsed.explain:
                self.model.check_explain()
        except RequestError as err:
            return _error(err.status, err.message)
        key = generation_key(settings)
        documents = parsed.documents()
        generated = await asyncio.gather(*(self.summarize_batch(Document(text, key)) for text in documents))
        limit = self.model.source_max_tokens
        summaries = [
            Summary(summary=g.summary, input_tokens=g.input_tokens, truncated=g.input_tokens > limit,
                    batch_size=g.batch_size,
                    rationale=self.model.explanation(g, text) if parsed.explain else None)
            for g, text in zip(generated, documents, strict=True)
        ]  # fmt: skip
        return SummarizeResponse(
            model=self.model.model_id,
            summaries=summaries,
            truncated=any(s.truncated for s in summaries),
            source_max_tokens=limit,
            generation=settings,
            timings=Timings(
                total_ms=1000 * (time.perf_counter() - started),
                queue_ms=max(g.queue_ms for g in generated),
                generate_ms=max(g.generate_ms for g in generated),
            ),
            gates=self.model.gates if parsed.explain and self.model.explains == "gates" else None,
        )


def build_app(args: dict[str, Any] | ServeConfig) -> Application:
    """The application for ``serve run`` / ``serve deploy`` (``args``: :class:`ServeConfig`'s fields) and ``lsr serve``.

    The checkpoint is checked here, before a replica starts, so a wrong path is one clear error instead of
    replicas failing their constructor. Auth is on when ``config.auth_token_env`` names a set variable where
    this builder runs; replicas receive only the token's digest.
    """
    try:
        config = args if isinstance(args, ServeConfig) else ServeConfig.model_validate(args)
    except ValidationError as err:
        raise InputError(f"serve config: {_one_line(err)}") from None
    check_servable(config)
    return Summarizer.options(**config.deployment_options()).bind(config, token_digest(config.auth_token_env))


def _one_line(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg'].removeprefix('Value error, ')}"
        for e in err.errors(include_url=False)
    )
