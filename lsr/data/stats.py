"""Corpus figures laid out like the paper's Table 1: examples and average words per document and summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import ray.data


@dataclass(frozen=True)
class CorpusStats:
    examples: int
    avg_document_words: float
    avg_summary_words: float

    def to_dict(self) -> dict:
        return asdict(self)


def word_counts(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Whitespace-separated words per text, the unit the paper's Table 1 reports.

    Arrow's split keeps an empty piece for leading or trailing whitespace (and one for an empty text), so the
    text is trimmed first and an empty text counts 0 words.
    """
    trimmed = pc.utf8_trim_whitespace(pc.fill_null(texts, ""))
    counts = pc.list_value_length(pc.utf8_split_whitespace(trimmed))
    return pc.if_else(pc.equal(pc.utf8_length(trimmed), 0), 0, counts).fill_null(0)


def _batch_sums(batch: pa.Table) -> pa.Table:
    return pa.table(
        {
            "n": [batch.num_rows],
            "doc_words": [pc.sum(word_counts(batch.column("document"))).as_py() or 0],
            "sum_words": [pc.sum(word_counts(batch.column("summary"))).as_py() or 0],
        }
    )


def corpus_stats(ds: ray.data.Dataset) -> CorpusStats:
    """Table-1 figures of a dataset with ``document`` and ``summary`` columns, summed in parallel blocks."""
    sums = ds.select_columns(["document", "summary"]).map_batches(_batch_sums, batch_format="pyarrow").to_pandas()
    if sums.empty or "n" not in sums:  # an empty dataset yields a frame without columns
        return CorpusStats(0, 0.0, 0.0)
    examples = int(sums["n"].sum())
    if examples == 0:
        return CorpusStats(0, 0.0, 0.0)
    return CorpusStats(
        examples=examples,
        avg_document_words=float(sums["doc_words"].sum()) / examples,
        avg_summary_words=float(sums["sum_words"].sum()) / examples,
    )
