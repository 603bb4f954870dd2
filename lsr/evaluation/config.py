"""``lsr evaluate``'s options, written once: flags, ``--config`` YAML and validation all come from
:class:`EvaluateConfig`.

Decoding follows the data set's ``generation`` section and the document truncation its ``model`` section
(``source_max_tokens``, the value training used), so evaluation decodes as training's validation did; the
YAML file may override either, and the flags override both.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lsr.core.cli_config import Flag
from lsr.core.config import Dataset, GenerationPreset, ModelPreset, StageConfig


class EvaluateConfig(StageConfig):
    """``lsr evaluate``: every option of the evaluation stage."""

    models: Annotated[list[str], Flag(name="--model", action="append", metavar="[NAME=]DIR")] = Field(
        min_length=1, description="a checkpoint folder (save_pretrained format); repeat to compare models. An AS-ES "
        "student (trained with --objective as-es) is found by its train_report.json and writes its chain; a dual "
        "one is NAME=ES_DIR+AS_DIR"
    )
    data: str = Field(description="unfiltered test documents (jsonl/parquet/csv, local or s3://)")
    output: str = Field(description="folder for results.md, results.json, <name>/predictions.parquet (or s3://)")
    dataset: Dataset = Field(description="picks the generation preset and the document truncation")
    generation: GenerationPreset
    model: Annotated[ModelPreset, Flag(fields=("source_max_tokens",))]
    limit: int | None = Field(default=None, ge=1, description="evaluate the first N documents only")
    batch_size: int = Field(default=8, ge=1, description="documents per generation batch")
    concurrency: int = Field(default=1, ge=1, description="generation actors per model")
    gpu: bool = Field(default=False, description="one GPU per generation actor (and for the latency timing)")
    bertscore: bool = Field(default=True, description="score BERTScore F1 (--no-bertscore: skip it)")
    bertscore_model: str = Field(
        default="auto",
        description="'auto' (roberta-large if cached, else the offline MiniLM), 'minilm', a name or a path",
    )
    bertscore_layers: int | None = Field(default=None, ge=1, description="hidden layer BERTScore reads")
    similarity: bool = Field(
        default=True, description="score semantic similarity to the reference with the offline MiniLM"
    )
    nli_model: str | None = Field(
        default=None, description="an NLI sequence classifier folder: adds the probability the reference entails "
        "the summary"
    )
    latency_batches: int = Field(
        default=8, ge=0, description="batches timed at batch size 1 and 16 for the seconds per summary (0: skip)"
    )
    force: bool = Field(default=False, description="evaluate even if --data carries mining or selection columns")

    @property
    def source_max_tokens(self) -> int:
        return self.model.source_max_tokens
