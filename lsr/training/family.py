"""Which student family a training run trains, checked before Ray starts: BART-family seq2seq or a causal LM.

The family comes from ``--model`` (:func:`lsr.model.loading.student_family`). A run refuses, with one line each:

- an objective that cannot train that family (MWF and AS-ES are BART-only: the MWF student is a BART with rationale
  modules, and AS-ES chains are written and served by seq2seq models);
- rationale views on a causal student (it has no modules to hold them: ``--views none``);
- an online KD teacher of the other family (the objective's own check);
- a causal student whose positions cannot hold the longest training sequence (the prompt, the document cut at
  ``--source-max-tokens`` and the summary cut at ``--target-max-tokens``), which would otherwise fail inside a
  worker on the first long row.
"""

from __future__ import annotations

from lsr.core.errors import InputError
from lsr.model.causal_prompt import prompt_overhead
from lsr.model.loading import CAUSAL, max_positions, student_family
from lsr.training.config import TrainConfig


def check_student(config: TrainConfig, tokenizer) -> str:
    """The run's student family (``seq2seq`` or ``causal``), after the checks in the module docstring."""
    family = student_family(config.checkpoint)
    objective = config.objective
    if family not in objective.student_families:
        raise InputError(
            f"--objective {objective.kind} trains BART-family (seq2seq) students and --model {config.checkpoint!r} "
            f"is a {family} LM; use --objective finetune or logit-kd for it"
        )
    if family == CAUSAL and config.views:
        raise InputError(f"--model {config.checkpoint!r} is a causal LM, which has no rationale modules: pass "
                         "--views none")
    objective.check_student(family)
    if family == CAUSAL:
        positions = max_positions(config.checkpoint)
        longest = prompt_overhead(tokenizer) + config.model.source_max_tokens + config.model.target_max_tokens
        if positions and longest > positions:
            raise InputError(
                f"--model {config.checkpoint!r} holds {positions} positions, fewer than the longest training sequence "
                f"({longest} tokens: the prompt, --source-max-tokens {config.model.source_max_tokens} and "
                f"--target-max-tokens {config.model.target_max_tokens}); lower --source-max-tokens"
            )
    return family
