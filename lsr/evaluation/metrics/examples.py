"""The number of examples each model was scored on (Table 2's ``n``): the job counts them, nothing measures them."""

from __future__ import annotations

from lsr.evaluation.metrics.base import Column, Metric

EXAMPLES = Metric(name="examples", per="model", columns=(Column("examples", "n", str),))
