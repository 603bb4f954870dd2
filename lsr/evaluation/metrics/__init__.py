"""The metrics of ``lsr evaluate``, one module each, and the registry that puts them in the results table.

- :mod:`lsr.evaluation.metrics.base`: what a metric declares (its columns, how it is computed, its note);
- :mod:`lsr.evaluation.metrics.registry`: the ordered list every reader of the table goes through;
- one module per metric: ``rouge``, ``bertscore``, ``examples`` (n), ``similarity``, ``entailment``, and the
  per-model ``parameters`` and ``latency``; ``encoders`` loads the models similarity and entailment read.
"""
