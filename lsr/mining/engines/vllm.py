"""The ``vllm`` engine: vLLM replicas inside the Ray cluster, on GPUs or on CPUs (:mod:`lsr.core.vllm`).

A replica is one actor of the mining stage holding one vLLM async engine for both calls of every document:

- on GPU the actor holds its one GPU, or runs in a placement group of exactly tensor x pipeline GPU bundles, where
  vLLM's Ray executor places its workers (children of the actor), so a replica never spreads beyond its group;
- on CPU the actor holds ``tensor x pipeline x --cpus-per-worker`` CPUs, and vLLM runs its workers as processes
  of the replica (its multiprocessing executor).

Every engine argument is reachable: the common ones are fields (flags, or ``mining: {engine: {...}}`` in
``--config``), anything else goes through ``--engine-kwargs``.

``ray``, ``vllm`` and the lsr modules that need them are imported inside the functions that use them: the ``lsr``
command imports this module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import logging
import os
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from lsr.core.cli_config import Flag
from lsr.core.vllm import ResolvedDevice, VllmOptions
from lsr.mining.engines.base import CallResult, ChatRequest, LlmEngine

logger = logging.getLogger(__name__)


def _replicas(text: str) -> tuple[int, int]:
    import argparse

    try:
        low, _, high = text.partition(",")
        return int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN,MAX, got {text!r}") from None


class VllmEngine(LlmEngine, VllmOptions):
    kind: Literal["vllm"] = "vllm"
    batch_size: int = Field(default=32, ge=1, description="documents per stage batch (http 16, vllm 32)")
    replicas: Annotated[tuple[int, int], Flag(parse=_replicas, metavar="N|MIN,MAX")] = Field(
        default=(1, 1), description="engine replicas: N or MIN,MAX (autoscaling)"
    )
    prefix_caching: bool = Field(default=True, description="vLLM's prefix caching (--no-prefix-caching turns it off)")
    max_num_seqs: int = Field(default=128, ge=1, description="sequences a replica runs at once (vLLM's "
                              "max_num_seqs); a stage task holds this many documents")
    accelerator_type: str | None = Field(default=None, description="e.g. H100 (a Ray accelerator type)")

    @field_validator("replicas", mode="before")
    @classmethod
    def _pair(cls, value: Any) -> Any:
        """A JSON or YAML pair arrives as a list; Engine's one-line ``__init__`` validates in python mode."""
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _replica_range(self) -> VllmEngine:
        low, high = self.replicas
        if not 1 <= low <= high:
            raise ValueError(f"--replicas {low},{high}: expected 1 <= MIN <= MAX")
        if self.device == "cpu" and self.accelerator_type:
            raise ValueError("--accelerator-type pins GPU replicas; it has no meaning with --device cpu")
        return self

    @property
    def gpus_per_replica(self) -> int:
        return self.workers_per_replica

    @property
    def rows_in_flight(self) -> int:
        """Documents in one stage task: ``max_num_seqs``, vLLM's running sequences. A replica runs two tasks at once
        (:data:`~lsr.mining.actor_pool.TASKS_PER_ACTOR`), so the engine's queue stays full across blocks."""
        return self.max_num_seqs

    def resolved_device(self) -> ResolvedDevice:
        """An accelerator type means GPUs; otherwise as :meth:`VllmOptions.resolved_device`."""
        return "gpu" if self.device == "auto" and self.accelerator_type else super().resolved_device()

    def engine_args(self, device: ResolvedDevice = "gpu") -> dict[str, Any]:
        """vLLM's ``AsyncEngineArgs`` for one replica on ``device``."""
        args: dict[str, Any] = {
            "model": self.model,
            **self.device_engine_args(device),
            "enable_prefix_caching": self.prefix_caching,
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            # --structured-output: no free white space in the JSON grammar, or a weak model can fill its whole
            # budget with blanks between two tokens and never end its reply.
            "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
        }
        return {**args, **self.extra_engine_kwargs}

    def chat_client(self, on_send: Callable[[], None] | None = None) -> VllmChatClient:
        device = self.resolved_device()
        return VllmChatClient(self.engine_args(device), self.process_env(device), on_send)

    def placement_group_config(self) -> dict[str, Any]:
        """One GPU replica's group: a GPU (and a CPU) per tensor x pipeline worker, packed on as few nodes as fit;
        ``--accelerator-type`` adds Ray's accelerator label to every bundle so the group lands on those GPUs."""
        bundle: dict[str, float] = {"GPU": 1, "CPU": 1}
        if self.accelerator_type:
            bundle[f"accelerator_type:{self.accelerator_type}"] = 0.001
        return {"bundles": [dict(bundle) for _ in range(self.gpus_per_replica)], "strategy": "PACK"}

    def stage_options(self) -> dict[str, Any]:
        """One actor per replica (module docstring)."""
        from lsr.mining.actor_pool import actor_options

        options = actor_options(self, *self.replicas)
        if self.resolved_device() == "cpu":
            options["num_cpus"] = self.replica_cpus()
            options["num_gpus"] = 0
        elif self.gpus_per_replica == 1:
            options["num_gpus"] = 1
            if self.accelerator_type:
                options["accelerator_type"] = self.accelerator_type
        else:
            options["num_gpus"] = 0
            options["ray_remote_args_fn"] = functools.partial(replica_placement, self.placement_group_config())
        return options


def replica_placement(group: dict[str, Any]) -> dict[str, Any]:
    """A new actor's scheduling: a placement group of its own (``ray_remote_args_fn`` runs once per actor)."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    placement = ray.util.placement_group(**group)
    strategy = PlacementGroupSchedulingStrategy(placement, placement_group_capture_child_tasks=True)
    return {"scheduling_strategy": strategy}


#: Times one replica rebuilds a dead engine before its calls fail (``vllm: the engine died``, retried on resume).
MAX_ENGINE_REBUILDS = 3


class VllmChatClient:
    """One replica's chat client: one vLLM async engine for both calls, so call B (which repeats call A's document
    as its prompt prefix) reuses call A's prefix cache; continuous batching runs every document's calls at once.

    A dead engine (its engine-core process killed, out of memory) fails every request in flight with vLLM's
    ``EngineDeadError`` and every later one too. The client then rebuilds the engine in place, once for all the
    calls that saw it die, and sends those calls again: no row fails for it and no row leaves the actor twice,
    so every document is still written exactly once. After :data:`MAX_ENGINE_REBUILDS` rebuilds the calls fail
    with the reason, which a resumed run retries.

    vLLM is imported here, in the actor, so the driver and machines without vLLM never need it.
    """

    def __init__(self, engine_args: dict[str, Any], env: dict[str, str] | None = None,
                 on_send: Callable[[], None] | None = None):
        self._args = engine_args
        self._env = dict(env or {})
        self._on_send = on_send  # counts every request (each resend to a rebuilt engine too) as it is submitted
        self._llm = None
        self._tokenizer = None
        self._requests = 0
        self._generation = 0  # engines built so far; a call remembers which one it used
        self._rebuild_lock: asyncio.Lock | None = None

    def start(self) -> None:
        """Load the model: once per actor (one replica), before its first batch."""
        os.environ.update(self._env)
        self._llm = self._build()

    def _build(self) -> Any:
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        self._generation += 1
        self._tokenizer = None
        return AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**self._args))

    async def _prompt(self, messages: list[dict[str, str]]) -> str:
        if self._tokenizer is None:
            tokenizer = self._llm.get_tokenizer()
            self._tokenizer = await tokenizer if inspect.isawaitable(tokenizer) else tokenizer
        return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    async def chat(self, request: ChatRequest) -> CallResult:
        from vllm.v1.engine.exceptions import EngineDeadError

        for attempt in range(1, MAX_ENGINE_REBUILDS + 2):
            generation = self._generation
            try:
                return dataclasses.replace(await self._generate(request), attempts=attempt)
            except EngineDeadError:
                if not await self._rebuild(generation):
                    break
        return CallResult(None, None, None, f"vllm: the engine died and was rebuilt {MAX_ENGINE_REBUILDS} times",
                          attempts=attempt)

    async def _generate(self, request: ChatRequest) -> CallResult:
        self._requests += 1
        if self._on_send is not None:
            self._on_send()
        request_id = f"lsr-{id(self)}-{self._requests}"
        final = None
        async for output in self._llm.generate(await self._prompt(request.messages), sampling_params(request),
                                               request_id):
            final = output
        if final is None or not final.outputs:
            return CallResult(None, None, None, "vllm: the engine returned no output")
        completion = final.outputs[0]
        return CallResult(completion.text, len(final.prompt_token_ids or ()), len(completion.token_ids), None,
                          completion.finish_reason, final.num_cached_tokens)

    def close(self) -> None:
        """Shut the engine down (its engine-core and worker processes end with it)."""
        if self._llm is not None:
            self._llm.shutdown()
            self._llm = None

    async def _rebuild(self, generation: int) -> bool:
        """Replace the dead engine (the first caller that saw it die builds; the others wait and resend); False
        once the rebuilds are spent."""
        if self._rebuild_lock is None:
            self._rebuild_lock = asyncio.Lock()
        async with self._rebuild_lock:
            if self._generation != generation:
                return True  # another call rebuilt it already
            if self._generation - 1 >= MAX_ENGINE_REBUILDS:
                return False
            logger.warning("the vLLM engine of this replica died; rebuilding it and sending its calls again")
            try:
                self._llm.shutdown()
            except Exception:  # noqa: BLE001 (a dead engine's own clean-up may fail; the new one matters)
                logger.debug("shutting down the dead engine failed", exc_info=True)
            # Calls made meanwhile still reach the dead engine, fail with EngineDeadError and wait here.
            self._llm = await asyncio.to_thread(self._build)
            return True


def sampling_params(request: ChatRequest) -> Any:
    """vLLM's ``SamplingParams`` of a call; a schema becomes vLLM's structured outputs (a JSON grammar)."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

    structured = StructuredOutputsParams(json=request.schema) if request.schema is not None else None
    # Only the finished output: by default the engine streams a cumulative output per generated token, which the
    # replica's event loop would unpack (text copied whole each time) for nothing.
    return SamplingParams(temperature=request.temperature, max_tokens=request.max_tokens,
                          structured_outputs=structured, output_kind=RequestOutputKind.FINAL_ONLY)
