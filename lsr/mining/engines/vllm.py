"""The ``vllm`` engine: vLLM replicas inside the Ray cluster, one replica spanning tensor x pipeline GPUs."""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from lsr.cli_config import Flag
from lsr.mining.engines.base import CallResult, LlmEngine


def _replicas(text: str) -> tuple[int, int]:
    import argparse

    try:
        low, _, high = text.partition(",")
        return int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN,MAX, got {text!r}") from None


class VllmEngine(LlmEngine):
    kind: Literal["vllm"] = "vllm"
    batch_size: int = Field(default=32, ge=1, description="documents per stage batch (http 16, vllm 32)")
    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs per replica for tensor parallelism")
    pipeline_parallel_size: int = Field(default=1, ge=1, description="GPUs per replica for pipeline parallelism")
    replicas: Annotated[tuple[int, int], Flag(parse=_replicas, metavar="N|MIN,MAX")] = Field(
        default=(1, 1), description="engine replicas: N or MIN,MAX (autoscaling)"
    )
    prefix_caching: bool = Field(default=True, description="vLLM's prefix caching (--no-prefix-caching turns it off)")
    max_num_seqs: Annotated[int, Flag(cli=False)] = 128
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1, description="share of GPU memory vLLM may take")
    accelerator_type: str | None = Field(default=None, description="e.g. H100 (a Ray accelerator type)")
    extra_engine_kwargs: Annotated[dict[str, Any], Flag(cli=False)] = Field(default_factory=dict)

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
        return self

    def engine_kwargs(self) -> dict[str, Any]:
        return {
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "enable_prefix_caching": self.prefix_caching,
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            **self.extra_engine_kwargs,
        }

    def placement_group_config(self) -> dict[str, Any]:
        """One replica's group: a GPU (and a CPU) per tensor x pipeline worker, packed on as few nodes as fit;
        ``--accelerator-type`` adds Ray's accelerator label to every bundle so the group lands on those GPUs."""
        bundle: dict[str, float] = {"GPU": 1, "CPU": 1}
        if self.accelerator_type:
            bundle[f"accelerator_type:{self.accelerator_type}"] = 0.001
        return {"bundles": [dict(bundle) for _ in range(self.gpus_per_replica)], "strategy": "PACK"}

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def rows_in_flight(self) -> int:
        """Documents in one stage task: ``max_num_seqs``, vLLM's running sequences. A replica runs two tasks at once
        (:data:`~lsr.mining.document_stage.TASKS_PER_ACTOR`), so the engine's queue stays full across blocks."""
        return self.max_num_seqs

    def engine_args(self) -> dict[str, Any]:
        """vLLM's ``AsyncEngineArgs``: one engine per replica; several GPUs run as Ray workers of the replica."""
        args = {"model": self.model, **self.engine_kwargs()}
        if self.gpus_per_replica > 1:
            args.setdefault("distributed_executor_backend", "ray")
        return args

    def chat_client(self) -> VllmChatClient:
        return VllmChatClient(self)

    def stage_options(self) -> dict[str, Any]:
        """One actor per replica. With one GPU the actor holds it; with tensor x pipeline > 1 the actor holds none
        and runs in a placement group of exactly that many GPU bundles, which vLLM's Ray workers (children of the
        actor, captured by the group) take, so a replica never spreads beyond its own group."""
        from lsr.mining.document_stage import actor_options

        options = actor_options(self, *self.replicas)
        if self.gpus_per_replica == 1:
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


class VllmChatClient:
    """One replica's chat client: one vLLM async engine for both calls, so call B (which repeats call A's document
    as its prompt prefix) reuses call A's prefix cache; continuous batching runs every document's calls at once.

    vLLM is imported here, in the actor, so the driver and CPU machines never need it.
    """

    def __init__(self, engine: VllmEngine):
        self._args = engine.engine_args()
        self._llm = None
        self._tokenizer = None
        self._requests = 0

    def start(self) -> None:
        """Load the model: once per actor (one replica), before its first batch."""
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        self._llm = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**self._args))

    async def _prompt(self, messages: list[dict[str, str]]) -> str:
        if self._tokenizer is None:
            tokenizer = self._llm.get_tokenizer()
            self._tokenizer = await tokenizer if inspect.isawaitable(tokenizer) else tokenizer
        return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    async def chat(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> CallResult:
        from vllm import SamplingParams

        self._requests += 1
        request_id = f"lsr-{id(self)}-{self._requests}"
        final = None
        async for output in self._llm.generate(
            await self._prompt(messages), SamplingParams(temperature=temperature, max_tokens=max_tokens), request_id
        ):
            final = output
        if final is None or not final.outputs:
            return CallResult(None, None, None, "vllm: the engine returned no output")
        completion = final.outputs[0]
        return CallResult(completion.text, len(final.prompt_token_ids or ()), len(completion.token_ids), None)
