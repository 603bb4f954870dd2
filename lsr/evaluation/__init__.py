"""Evaluation: generate summaries with each model over Ray Data, score them, compare them in one table.

- :mod:`lsr.evaluation.config`: ``EvaluateConfig``, every option of ``lsr evaluate``;
- :mod:`lsr.evaluation.generation`: loading a checkpoint and beam-search generation (shared with training's
  validation and serving, so every stage decodes the same way);
- :mod:`lsr.evaluation.metrics`: ROUGE and BERTScore per example;
- :mod:`lsr.evaluation.results`: the results table in the layout of the paper's Table 2;
- :mod:`lsr.evaluation.job`: the job that ties them together.

``generate_batch`` and ``load_summarizer`` are re-exported here: training and serving import them from
``lsr.evaluation`` and need nothing else of this package.
"""

from lsr.evaluation.generation import generate_batch, load_summarizer

__all__ = ["generate_batch", "load_summarizer"]
