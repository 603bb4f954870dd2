"""Step 2, selection: keep the mined examples whose generated summaries agree with the gold one.

The rule: docs/paper.md#selection.

- :mod:`lsr.selection.config`: ``SelectConfig``, every option of ``lsr select``;
- :mod:`lsr.selection.scoring`: the pure arithmetic (ROUGE, Score1/Score2, one verdict per row);
- :mod:`lsr.selection.split_guard`: the refusal to filter a test or validation split;
- :mod:`lsr.selection.job`: the Ray Data job (score, partition into kept/ and rejected/, write);
- :mod:`lsr.selection.report`: Table 1, the score distribution and its histogram.
"""

from lsr.selection.config import SelectConfig, rule_for
from lsr.selection.job import SelectionResult, run_selection
from lsr.selection.split_guard import check_split, held_out_tokens

__all__ = ["SelectConfig", "SelectionResult", "check_split", "held_out_tokens", "rule_for", "run_selection"]
