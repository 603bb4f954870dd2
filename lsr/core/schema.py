"""Arrow schemas of the files that pass between stages (docs/architecture.md#files-between-stages).

Every stage writes Parquet with one of these schemas, so a later stage (or a person with pandas) can rely
on column names and types whatever engine or data set produced the file.
"""

from __future__ import annotations

import pyarrow as pa

#: Input of mining: the normalised documents.
DOCUMENTS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("document", pa.string(), nullable=False),
        pa.field("summary", pa.string(), nullable=False),
    ]
)

TRIPLE = pa.struct(
    [
        pa.field("subject", pa.string()),
        pa.field("relation", pa.string()),
        pa.field("object", pa.string()),
    ]
)

#: Output of mining: one row per input document, with a rationale or with an ``error``.
#: ``aspects[i]``, ``sentences[i]``, ``triples[i]`` (and, for CNN/DM, ``sub_summaries[i]``) belong to the
#: same rationale line. ``problems`` lists the raw lines the parser could not use, with the reason.
RATIONALES = pa.schema(
    [
        *DOCUMENTS,
        pa.field("aspects", pa.list_(pa.string())),
        pa.field("sentences", pa.list_(pa.string())),
        pa.field("triples", pa.list_(pa.list_(TRIPLE))),
        pa.field("sub_summaries", pa.list_(pa.string())),
        pa.field("total_summary", pa.string()),
        pa.field("raw_rationale", pa.string()),
        pa.field("raw_summaries", pa.string()),
        pa.field("problems", pa.list_(pa.string())),
        pa.field("engine", pa.string()),
        pa.field("model", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("truncated", pa.bool_()),
        pa.field("error", pa.string()),
        # Requests sent for the row's calls, resends included (HTTP retries, calls sent again to a rebuilt engine).
        pa.field("requests", pa.int64()),
    ]
)

#: Output of selection: the mining row plus its ROUGE figures, its score and, when rejected, why.
SCORED = pa.schema(
    [
        *RATIONALES,
        pa.field("rouge1", pa.float64()),
        pa.field("rouge2", pa.float64()),
        pa.field("rouge_x", pa.float64()),
        pa.field("score", pa.float64()),
        pa.field("kept", pa.bool_()),
        pa.field("reject_reason", pa.string()),
    ]
)
