"""The Ray Serve application: a light FastAPI ingress in front of the model deployment, which batches documents
across requests.

Two deployments, shaped like Ray Serve's model-composition examples: :class:`SummarizerIngress`
(``@serve.ingress(api)``: auth, body limits, validation, the page, ``/healthz``; no cores, pinned to the Ray head
node by default) calls :class:`Summarizer` (the model, ``@serve.batch`` across concurrent calls, replicas or
autoscaling in the deployment options) through a ``DeploymentHandle``. :func:`build_app` is the application
builder that ``lsr serve``, ``serve run`` and ``serve deploy`` (through a config YAML's ``args:``) all call.

A lost replica: summarising is idempotent, so a call whose model replica died (its actor or its node;
``RayActorError``, ``ReplicaUnavailableError``, a lost result) is sent again, once, to another replica, within the
request's ``replica_wait_s``. When no model replica takes the request in that time (none alive, the deployment
unavailable, or Serve's back-pressure), the answer is 503 with ``Retry-After``, never a 500. The ingress itself
lives on the head node, so losing a worker node loses no HTTP request the head's proxy holds.

Readiness: a model replica loads its model in its constructor, and Serve routes no call to a replica before its
constructor returns; ``GET /healthz`` asks a model replica, so 200 means a model is loaded and reachable (503
otherwise). Shutdown: Serve stops routing to a replica and lets its in-flight requests finish for up to
``graceful_shutdown_timeout_s`` (the ingress drains 10 s longer, so it can carry the last answers back).

``torch`` is imported inside the function that uses it: the ingress replica, which never generates, does not
load it.
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
from ray.exceptions import ObjectLostError, RayActorError
from ray.serve import Application
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle

from lsr.core.errors import InputError
from lsr.serving.auth import authorized, token_digest
from lsr.serving.config import DEPLOYMENT_NAME, INGRESS_NAME, Batching, ServeConfig
from lsr.serving.page import PAGE
from lsr.serving.schema import RequestError, SummarizeRequest, SummarizeResponse, Summary, Timings, parse_request
from lsr.serving.summarizer import (
    Document,
    Generated,
    ModelCard,
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


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
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


class ModelUnavailable(Exception):
    """No model replica took a request within its deadline: answered 503 with ``Retry-After``."""


def replica_lost(err: BaseException) -> bool:
    """Whether a handle call failed because its replica went away (its actor died or became unreachable, its node
    with it), so the same call may go to another replica; an error the model itself raised is not one."""
    lost = (RayActorError, ReplicaUnavailableError, ObjectLostError)
    return isinstance(err, lost) or isinstance(getattr(err, "cause", None), lost)


async def _assigned(response: Any, timeout: float) -> None:
    """Wait until Serve has given ``response``'s call to a replica, at most ``timeout`` seconds.

    Serve queues a call while no replica can take it (none running, all full); this bounds that wait, which is
    what turns "no replica" into a 503. It uses the response's own future (a developer API of
    ``DeploymentResponse``; without it the call is simply awaited)."""
    fetch = getattr(response, "_fetch_future_result_async", None)
    if fetch is None:
        return
    task = asyncio.ensure_future(fetch())
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no "never retrieved" warning
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except asyncio.TimeoutError:
        response.cancel()
        raise ModelUnavailable(f"no model replica took the request within {timeout:.0f} s") from None
    except asyncio.CancelledError:  # the client went away: so does its call
        response.cancel()
        raise


async def call_model(handle: Any, method: str, args: tuple[Any, ...], wait_s: float) -> Any:
    """``method`` of a model replica through ``handle``; a call lost with its replica goes once more to another.

    Both tries share one deadline, ``wait_s``, for a replica to take the call; past it, or when Serve refuses
    the call (deployment unavailable, back-pressure), or when the second try is lost too,
    :class:`ModelUnavailable`. An error the model raised is raised as it is (a 500), never retried."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    for attempt in (1, 2):
        response = getattr(handle, method).remote(*args)
        try:
            await _assigned(response, max(deadline - loop.time(), 0.1))
            return await response
        except (DeploymentUnavailableError, BackPressureError) as err:
            raise ModelUnavailable(getattr(err, "message", None) or str(err)) from None
        except Exception as err:  # noqa: BLE001 - sorted by replica_lost: only a lost replica is retried
            if not replica_lost(err):
                raise
            if attempt == 2 or loop.time() >= deadline:
                raise ModelUnavailable(f"the model replica was lost, twice ({type(err).__name__})") from None
            logger.warning("lsr serve: %s.%s lost with its replica (%s); retrying once on another replica",
                           DEPLOYMENT_NAME, method, type(err).__name__)  # fmt: skip
    raise AssertionError("unreachable")


@serve.deployment(name=DEPLOYMENT_NAME)
class Summarizer:
    """One model replica: the model on this replica's device and a batch queue shared by concurrent calls."""

    def __init__(self, config: ServeConfig):
        import torch

        device = "cuda" if config.gpu and torch.cuda.is_available() else "cpu"
        self.config = config
        self.model = ServedModel(config, device)
        self.info = self.model.info()
        self.summarize_batch.set_max_batch_size(config.batching.max_batch_size)
        self.summarize_batch.set_batch_wait_timeout_s(config.batching.batch_wait_timeout_s)
        logger.info("lsr serve: model %s loaded on %s", self.model.model_id, device)

    # The config's defaults; __init__ applies this server's settings (serve.batch takes no per-instance values).
    @serve.batch(max_batch_size=_BATCHING.max_batch_size, batch_wait_timeout_s=_BATCHING.batch_wait_timeout_s)
    async def summarize_batch(self, documents: list[Document]) -> list[Generated]:
        # generate() runs in a thread, so the event loop keeps answering probes and forming the next batch.
        return await asyncio.to_thread(self.model.summarize, documents)

    async def summarize(self, texts: list[str], key: tuple[tuple[str, Any], ...], explain: bool) -> dict[str, Any]:
        """One request's documents (already validated by the ingress), each joining this replica's next batch."""
        generated = await asyncio.gather(*(self.summarize_batch(Document(text, key)) for text in texts))
        limit = self.model.source_max_tokens
        summaries = [
            Summary(summary=g.summary, input_tokens=g.input_tokens, truncated=g.input_tokens > limit,
                    batch_size=g.batch_size, rationale=self.model.explanation(g, text) if explain else None)
            for g, text in zip(generated, texts, strict=True)
        ]  # fmt: skip
        return {
            "summaries": summaries,
            "queue_ms": max(g.queue_ms for g in generated),
            "generate_ms": max(g.generate_ms for g in generated),
        }

    async def card(self) -> ModelCard:
        return self.model.card()

    async def model_info(self) -> dict[str, Any]:
        return {**self.info, "replica_memory": process_memory_mb()}


@serve.deployment(name=INGRESS_NAME)
@serve.ingress(api)
class SummarizerIngress:
    """The HTTP routes: auth, limits and validation here; summaries from a model replica, retried once if it dies."""

    def __init__(self, config: ServeConfig, auth_digest: str | None, model: DeploymentHandle):
        self.config = config
        self.auth_digest = auth_digest
        self.model = model
        self._card: ModelCard | None = None
        logger.info("lsr serve: ingress up (auth %s)", "on" if auth_digest else "off")

    async def _call(self, method: str, *args: Any, wait_s: float | None = None) -> Any:
        return await call_model(self.model, method, args, wait_s or self.config.replica_wait_s)

    async def card(self) -> ModelCard:
        if self._card is None:  # the same for every replica of this application: asked once
            self._card = await self._call("card")
        return self._card

    def _unavailable(self, err: ModelUnavailable) -> JSONResponse:
        logger.warning("lsr serve: answering 503: %s", err)
        return _error(503, f"no model replica is available ({err}); retry later",
                      {"Retry-After": str(self.config.retry_after_s)})  # fmt: skip

    # ---- routes -------------------------------------------------------------------------------------------

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(self) -> HTMLResponse:
        return HTMLResponse(PAGE)

    @api.get("/healthz")
    async def healthz(self) -> Any:
        """Readiness: 200 once a model replica is loaded and reachable, else 503 (no token needed)."""
        try:
            card = await self._call("card", wait_s=min(self.config.replica_wait_s, 5.0))
        except ModelUnavailable as err:
            return self._unavailable(err)
        return {"status": "ok", "model": card.model_id, "loaded": True}

    @api.get("/model")
    async def model_info(self, request: Request) -> Any:
        """The model's config, views, gates, generation defaults, limits, training metadata, replica memory."""
        if not authorized(request.headers.get("authorization"), self.auth_digest):
            return _error(401, "missing or wrong bearer token")
        try:
            info = await self._call("model_info")
        except ModelUnavailable as err:
            return self._unavailable(err)
        return {**info, "auth": self.auth_digest is not None}

    @api.post("/summarize", response_model=SummarizeResponse, openapi_extra=_REQUEST_BODY)
    async def summarize(self, request: Request) -> Any:
        """Summaries of ``text`` or ``texts``; each document joins a model replica's next batch."""
        started = time.perf_counter()
        if not authorized(request.headers.get("authorization"), self.auth_digest):
            return _error(401, "missing or wrong bearer token")
        try:
            parsed = parse_request(await read_body(request, self.config.limits.max_body_bytes), self.config.limits)
            card = await self.card()
            settings = card.generation_for(parsed.generation_overrides())
            if parsed.explain:
                card.check_explain()
            documents = parsed.documents()
            done = await self._call("summarize", documents, generation_key(settings), bool(parsed.explain))
        except RequestError as err:
            return _error(err.status, err.message)
        except ModelUnavailable as err:
            return self._unavailable(err)
        summaries = done["summaries"]
        return SummarizeResponse(
            model=card.model_id,
            summaries=summaries,
            truncated=any(s.truncated for s in summaries),
            source_max_tokens=card.source_max_tokens,
            generation=settings,
            timings=Timings(
                total_ms=1000 * (time.perf_counter() - started),
                queue_ms=done["queue_ms"],
                generate_ms=done["generate_ms"],
            ),
            gates=card.gates if parsed.explain and card.explains == "gates" else None,
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
    model = Summarizer.options(**config.deployment_options()).bind(config)
    return SummarizerIngress.options(**config.ingress_options()).bind(
        config, token_digest(config.auth_token_env), model
    )


def _one_line(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg'].removeprefix('Value error, ')}"
        for e in err.errors(include_url=False)
    )
