"""The ``vllm`` engine: vLLM replicas inside the Ray cluster, one replica spanning tensor x pipeline GPUs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from lsr.cli_config import Flag
from lsr.mining.engines.base import ERROR_COLUMN, CallResult, LlmEngine


def _replicas(text: str) -> tuple[int, int]:
    import argparse

    try:
        low, _, high = text.partition(",")
        return int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN,MAX, got {text!r}") from None


class VllmEngine(LlmEngine):
    kind: Literal["vllm"] = "vllm"
    batch_size: int = Field(default=32, ge=1, description="rows per request batch (http 16, vllm 32)")
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
        gpus = self.tensor_parallel_size * self.pipeline_parallel_size
        return {"bundles": [{"GPU": 1, "CPU": 1}] * gpus, "strategy": "PACK"}

    def processor_config(self):
        from ray.data.llm import vLLMEngineProcessorConfig

        return vLLMEngineProcessorConfig(
            model_source=self.model,
            engine_kwargs=self.engine_kwargs(),
            concurrency=self.replicas,
            batch_size=self.batch_size,
            accelerator_type=self.accelerator_type,
            placement_group_config=self.placement_group_config(),
            # A failed generation becomes the row's error instead of failing the job.
            should_continue_on_error=True,
            chat_template_stage=True,
            tokenize_stage=True,
            detokenize_stage=True,
        )

    def request(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> dict[str, Any]:
        return {"messages": messages, "sampling_params": {"temperature": temperature, "max_tokens": max_tokens}}

    def reply(self, data: dict[str, Any]) -> CallResult:
        if data.get(ERROR_COLUMN):
            return CallResult(None, None, None, f"vllm: {data[ERROR_COLUMN]}")
        return CallResult(
            data.get("generated_text"), data.get("num_input_tokens"), data.get("num_generated_tokens"), None
        )
