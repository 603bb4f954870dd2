"""AS-ES predictions for ``lsr evaluate``: the summary is scored like any model's, the rationale is kept.

:func:`generate_ases_predictions` is the AS-ES counterpart of
:func:`lsr.evaluation.generation.generate_summaries`: the same input rows (``id, document, summary``), the same
``prediction`` column (the final summary), plus a ``rationale`` column (JSON: turns, aspects, sentences, triples,
sub-summaries, finished) for the predictions file. One actor holds the student (dual: its ES and AS models), as
the summarizer actor does.

``ray``, ``torch`` are imported inside the functions that use them, so that importing this module for one of its
functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lsr.ases.generate import DEFAULT_MAX_ROUNDS, generate_chains, load_models, model_step

if TYPE_CHECKING:
    import ray.data


class AsEsSummarizer:
    """A Ray Data actor: loads the AS-ES student once, then writes chains for batches of documents."""

    def __init__(self, es_model: str, as_model: str | None, source_max_tokens: int,
                 generation_kwargs: dict[str, Any], max_rounds: int = DEFAULT_MAX_ROUNDS):
        import torch

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        models, self.unified = load_models(es_model, as_model, self.device)
        self.step = model_step(models, source_max_tokens=source_max_tokens, generation_kwargs=generation_kwargs,
                               device=self.device)
        self.max_rounds = max_rounds

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        chains = generate_chains([str(d) for d in batch["document"]], self.step, unified=self.unified,
                                 max_rounds=self.max_rounds)
        batch["prediction"] = [c.summary for c in chains]
        batch["rationale"] = [json.dumps(c.as_dict()) for c in chains]
        return batch


def generate_ases_predictions(
    ds: ray.data.Dataset,
    es_model: str,
    as_model: str | None = None,
    *,
    source_max_tokens: int,
    generation_kwargs: dict[str, Any],
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    batch_size: int = 8,
    concurrency: int = 1,
    num_gpus: float = 0,
) -> ray.data.Dataset:
    """``ds`` (id, document, summary) with ``prediction`` and ``rationale`` columns; ``as_model`` None = unified."""
    import ray.data

    return ds.map_batches(
        AsEsSummarizer,
        fn_constructor_kwargs={"es_model": es_model, "as_model": as_model, "source_max_tokens": source_max_tokens,
                               "generation_kwargs": generation_kwargs, "max_rounds": max_rounds},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=concurrency),  # as generate_summaries does
        num_gpus=num_gpus,
    )
