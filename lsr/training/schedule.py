"""The paper's learning-rate schedule (Noam, Vaswani et al. 2017) as a standard torch scheduler.

lr(step) = lr_scale * min(step^-0.5, step * warmup^-1.5): linear warm-up to ``lr_scale / sqrt(warmup)`` at
``step == warmup``, then inverse-square-root decay. The optimizer's base lr is ``lr_scale`` and the lambda
gives the factor, so ``scheduler.get_last_lr()`` reads the absolute rate and checkpoints resume it exactly.
"""

from __future__ import annotations

import torch


def noam_factor(step: int, warmup_steps: int) -> float:
    """The Noam factor at optimizer ``step`` (1-based; step 0, before any update, is treated as step 1)."""
    if warmup_steps < 1:
        raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
    step = max(step, 1)
    return min(step**-0.5, step * warmup_steps**-1.5)


def noam_lr(step: int, lr_scale: float, warmup_steps: int) -> float:
    """The absolute learning rate of the paper's formula at ``step``."""
    return lr_scale * noam_factor(step, warmup_steps)


def noam_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` whose rate after ``n`` calls to ``step()`` is ``noam_lr(n + 1, base_lr, warmup)``.

    The rate used by the k-th update (k = 1, 2, ...) is therefore the formula's value at step k.
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda n: noam_factor(n + 1, warmup_steps))
