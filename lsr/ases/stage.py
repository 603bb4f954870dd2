"""``lsr segment``: the mined (or selected) rows with their AS-ES segments, on Ray Data, plus the split report.

Output folder::

    OUTPUT/segmented/        Parquet (:data:`SEGMENTED`): the row's document, summary, mined rationale and its
                             ``segments`` (text, type ES/AS, role, item, score); ``lsr train --objective as-es``
                             reads it
    OUTPUT/segment_report.json, OUTPUT/segment_report.md   the ES/AS split statistics (:mod:`lsr.ases.report`)

The *source* scheme is a plain ``map_batches`` function; the *entropy* scheme runs the scorer model in an actor
pool, one model per actor (``--concurrency`` actors, ``--scorer-gpus`` each).

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from lsr.ases.chain import Segment, chain_items
from lsr.ases.report import build_report, render_markdown, row_stats
from lsr.ases.segment import (
    DEFAULT_ENTROPY_FACTOR,
    DEFAULT_EXTRACTIVE_ROLES,
    DEFAULT_OVERLAP_THRESHOLD,
    by_entropy,
    by_source,
    entropy_pieces,
)
from lsr.core.config import StageConfig
from lsr.core.errors import InputError
from lsr.core.schema import TRIPLE
from lsr.core.storage import fresh_folder, join, write_text
from lsr.data.layout import SEGMENT_REPORT_JSON, SEGMENT_REPORT_MD, SEGMENTED_DIR

if TYPE_CHECKING:
    import ray.data

INPUT_COLUMNS = ("id", "document", "summary", "aspects", "sentences", "triples", "sub_summaries", "total_summary")

SEGMENT = pa.struct(
    [
        pa.field("text", pa.string()),
        pa.field("type", pa.string()),
        pa.field("role", pa.string()),
        pa.field("item", pa.int32()),
        pa.field("score", pa.float64()),
    ]
)
#: A segmented row: the mined row's rationale, its segments, and the pieces the scorer could not reach.
SEGMENTED = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("document", pa.string()),
        pa.field("summary", pa.string()),
        pa.field("aspects", pa.list_(pa.string())),
        pa.field("sentences", pa.list_(pa.string())),
        pa.field("triples", pa.list_(pa.list_(TRIPLE))),
        pa.field("sub_summaries", pa.list_(pa.string())),
        pa.field("total_summary", pa.string()),
        pa.field("segments", pa.list_(SEGMENT)),
        pa.field("truncated_pieces", pa.int32()),
    ]
)
STATS_COLUMN = "stats_json"


class SegmentConfig(StageConfig):
    """``lsr segment``: cut each mined rationale chain into ES and AS segments (docs/paper.md#as-es)."""

    input: str = Field(description="the selection output (its kept/ folder is used) or mined Parquet files")
    output: str = Field(description="folder for segmented/ and segment_report.json/.md")
    scheme: Literal["source", "entropy"] = Field(
        default="source", description="source: ES = taken from the document; entropy: the AS-ES paper's rule"
    )
    overlap_threshold: float = Field(
        default=DEFAULT_OVERLAP_THRESHOLD, ge=0.0, le=1.0,
        description="source scheme: ROUGE-L precision against a document sentence for an ES piece",
    )
    extractive_roles: list[Literal["sentence", "aspect", "triples", "sub_summary"]] = Field(
        default=list(DEFAULT_EXTRACTIVE_ROLES), description="source scheme: roles that may be ES"
    )
    scorer: str | None = Field(default=None, description="entropy scheme: a causal or seq2seq checkpoint folder")
    entropy_factor: float = Field(
        default=DEFAULT_ENTROPY_FACTOR, gt=0.0, description="entropy scheme: AS when a piece's entropy > this x mean"
    )
    scorer_max_tokens: int = Field(default=1024, ge=8, description="entropy scheme: tokens of document and of chain")
    concurrency: int = Field(default=1, ge=1, description="entropy scheme: scorer actors (one model each)")
    scorer_gpus: float = Field(default=0.0, ge=0.0, description="entropy scheme: GPUs per scorer actor")
    batch_size: int = Field(default=16, ge=1, description="rows per Ray Data batch")
    overwrite: bool = Field(default=False, description="replace the segmented/ folder of an earlier run")

    @model_validator(mode="after")
    def _scorer_for_entropy(self) -> SegmentConfig:
        if self.scheme == "entropy" and not self.scorer:
            raise ValueError("--scheme entropy needs --scorer PATH (a causal or seq2seq checkpoint folder)")
        return self

    def parameters(self) -> dict[str, Any]:
        if self.scheme == "source":
            return {"overlap_threshold": self.overlap_threshold, "extractive_roles": list(self.extractive_roles)}
        return {"scorer": self.scorer, "entropy_factor": self.entropy_factor, "scorer_max_tokens":
                self.scorer_max_tokens}


# ---- the per-batch work -------------------------------------------------------------------------------------


def _rows(batch: pa.Table) -> list[dict[str, Any]]:
    return batch.select(list(INPUT_COLUMNS)).to_pylist()


def _output_batch(rows: list[dict[str, Any]], segmented: list[tuple[list[Segment], int]]) -> pa.Table:
    out = []
    for row, (segments, truncated) in zip(rows, segmented, strict=True):
        out.append({**row, "segments": [s.as_row() for s in segments], "truncated_pieces": truncated,
                    STATS_COLUMN: json.dumps(row_stats(segments, row["total_summary"] or ""))})
    schema = SEGMENTED.append(pa.field(STATS_COLUMN, pa.string()))
    return pa.Table.from_pylist(out, schema=schema)


def segment_by_source(batch: pa.Table, threshold: float, extractive_roles: list[str]) -> pa.Table:
    rows = _rows(batch)
    segmented = [
        (by_source(chain_items(r), r["document"], threshold=threshold, extractive_roles=extractive_roles), 0)
        for r in rows
    ]
    return _output_batch(rows, segmented)


class EntropySegmenter:
    """Ray Data actor of the entropy scheme: one scorer model, loaded once."""

    def __init__(self, scorer: str, max_tokens: int, factor: float):
        from lsr.ases.entropy import EntropyScorer

        self.scorer = EntropyScorer(scorer, max_tokens=max_tokens)
        self.factor = factor

    def segment_row(self, row: Mapping[str, Any]) -> tuple[list[Segment], int]:
        pieces = entropy_pieces(chain_items(row))
        entropies, truncated = self.scorer.score(row["document"], [text for _, text in pieces])
        return by_entropy(pieces, entropies, factor=self.factor), truncated

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = _rows(batch)
        return _output_batch(rows, [self.segment_row(r) for r in rows])


def segment_dataset(ds: ray.data.Dataset, config: SegmentConfig) -> ray.data.Dataset:
    """``ds`` (mined rows) with their segments and a per-row stats column, by the configured scheme."""
    if config.scheme == "source":
        return ds.map_batches(
            segment_by_source, batch_format="pyarrow", batch_size=config.batch_size,
            fn_kwargs={"threshold": config.overlap_threshold, "extractive_roles": list(config.extractive_roles)},
        )
    return ds.map_batches(
        EntropySegmenter, batch_format="pyarrow", batch_size=config.batch_size, concurrency=config.concurrency,
        num_gpus=config.scorer_gpus,
        fn_constructor_kwargs={"scorer": config.scorer, "max_tokens": config.scorer_max_tokens,
                               "factor": config.entropy_factor},
    )


# ---- the stage ----------------------------------------------------------------------------------------------


def run_segmentation(config: SegmentConfig) -> dict[str, Any]:
    """Segment every row, write ``segmented/`` and the report; the report's content is returned."""
    from lsr.data.io import read_parquet_dir, write_parquet
    from lsr.data.training_rows import drop_failed_rows, training_dir

    source = training_dir(config.input)
    mined = read_parquet_dir(source, INPUT_COLUMNS)
    if config.scheme == "entropy":
        from lsr.ases.entropy import load_scorer

        load_scorer(config.scorer)  # a wrong path fails here, in one line, not inside an actor
    target = fresh_folder(config.output, SEGMENTED_DIR, config.overwrite)
    segmented = segment_dataset(mined.map_batches(drop_failed_rows, batch_format="pyarrow"), config).materialize()
    stats_table = segmented.select_columns([STATS_COLUMN, "truncated_pieces"]).to_pandas()
    if len(stats_table) == 0:
        raise InputError(f"{source}: no row with a rationale to segment")
    write_parquet(segmented, target, SEGMENTED)
    report = build_report(
        [json.loads(s) for s in stats_table[STATS_COLUMN]], scheme=config.scheme, parameters=config.parameters(),
        input_path=source, output=target, truncated_pieces=int(stats_table["truncated_pieces"].sum()),
    )
    write_text(join(config.output, SEGMENT_REPORT_JSON), json.dumps(report, indent=2) + "\n")
    write_text(join(config.output, SEGMENT_REPORT_MD), render_markdown(report))
    return report
