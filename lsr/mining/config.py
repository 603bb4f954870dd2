"""``lsr mine``'s one typed config: every option of Step 1, written once (flags, YAML and checks come from here)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from lsr.core.config import Dataset, MiningPreset, StageConfig
from lsr.mining.engines import EngineConfig, check_settings


class MineConfig(StageConfig):
    """Mine every document of ``input`` into the output folder ``output`` with one engine."""

    #: ``--config``'s ``mining: {engine: {...}}`` sets the engine's fields (e.g. vLLM's dtype and KV cache).
    yaml_fields: ClassVar[dict[str, str]] = {"mining.engine": "engine"}

    input: str = Field(description="documents: jsonl/parquet/csv file or folder, local or s3://")
    output: str = Field(
        description="output folder of Parquet files (local or s3://); "
        "the report goes next to it as OUTPUT.report.json and OUTPUT.report.md"
    )
    dataset: Dataset = Field(description="picks the prompts and output budgets")
    engine: EngineConfig = Field(
        description="vllm: in-cluster GPUs; http: an OpenAI-compatible endpoint; oracle: no LLM, an extractive baseline"
    )
    mining: MiningPreset
    limit: int | None = Field(default=None, ge=1, description="only the first N documents (resume with the same N)")
    rows_per_file: int = Field(
        default=64,
        ge=1,
        description="rows per output file, written as rows finish: a killed run loses at most this many finished "
        "rows, plus those still inside the pipeline (requests in flight)",
    )
    retry_failed: bool = Field(
        default=True,
        description="on resume, mine again rows that failed for a transient reason (HTTP 5xx, 429, 408, 401/403, "
        "timeouts, connection errors)",
    )
    retry_unparsable: bool = Field(
        default=False, description="on resume, also mine again rows whose reply could not be parsed"
    )
    start_over: bool = Field(
        default=False,
        description="delete the rows an earlier run wrote to --output (also one with other settings) and mine "
        "again; files lsr did not write are never deleted",
    )

    @field_validator("engine", mode="before")
    @classmethod
    def _options_of_the_chosen_engine(cls, value):
        check_settings(value)
        return value

    @model_validator(mode="after")
    def _structured_output_needs_an_llm(self) -> MineConfig:
        if self.mining.structured_output and self.engine.runs_locally:
            raise ValueError(f"--structured-output holds an LLM's replies to a JSON schema; --engine "
                             f"{self.engine.kind} writes its own (use it with --engine vllm or http)")
        return self
