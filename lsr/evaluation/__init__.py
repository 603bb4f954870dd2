"""Evaluation: generate summaries with each model over Ray Data, score them, compare them in one table.

- :mod:`lsr.evaluation.config`: ``EvaluateConfig``, every option of ``lsr evaluate``;
- :mod:`lsr.evaluation.generation`: the Ray Data actors that generate (loading and decoding are
  :mod:`lsr.model.generate`'s, shared with training's validation and serving, so every stage decodes the same way);
- :mod:`lsr.evaluation.metrics`: one module per metric and the registry of the table's columns;
- :mod:`lsr.evaluation.profile`: the per-model metrics (parameters, latency) measured in one Ray task;
- :mod:`lsr.evaluation.results`: the results table in the layout of the paper's Table 2;
- :mod:`lsr.evaluation.job`: the job that ties them together.
"""
