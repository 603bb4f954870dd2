"""The logit-KD losses as pure functions: KL(teacher_T || student_T) per summary token, averaged over summary tokens.

Both take the student's logits ``(batch, positions, vocab)`` and a ``mask`` ``(batch, positions)`` that is true on
the summary tokens only (padding and prompt tokens are false), and return the mean over those tokens of

    KL(q || p) = sum_v q_v (log q_v - log p_v),   q = softmax(teacher / T),   p = softmax(student / T)

without the ``T^2`` factor (the objective applies it, Hinton et al. 2015, so the gradient's scale does not
shrink as T grows).

:func:`kd_kl_topk` is the offline form: the teacher is known only through its top-k token ids and log-probs per
position. The teacher is renormalised over its top k at temperature T (``log_softmax(logprob_k / T)``, exact for the
tempered teacher restricted to those k tokens, because ``log p = z - log Z`` and the constant cancels), and the
student's log-softmax is taken over the FULL vocabulary and gathered at those ids. The mass outside the top k is
therefore treated as zero for the teacher: the loss is ``KL(q_k || p / P_k) - log P_k`` with ``P_k`` the student's
mass on the k tokens, still >= 0, and zero only when the student puts all its mass on the teacher's top k in the
teacher's proportions. A "rest" bucket was not chosen because its tempered mass cannot be computed from top-k
values at T != 1 (it depends on how the tail is spread, which was not stored); at k = 20 the tail of a large
teacher on its own gold summary is small, and this is the sparse-KD form of DistillKit and Megatron's offline KD.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _masked_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def kd_kl_full(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean over the masked tokens of KL(softmax(teacher / T) || softmax(student / T)), full vocabularies."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    log_p = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_q = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_token = (log_q.exp() * (log_q - log_p)).sum(-1)
    return _masked_mean(per_token, mask)


def kd_kl_topk(
    student_logits: torch.Tensor,
    teacher_ids: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """The same KL from the teacher's top k only (``teacher_ids``/``teacher_logprobs``: ``(batch, positions, k)``).

    See the module docstring for how the mass outside the top k is treated.
    """
    log_q = F.log_softmax(teacher_logprobs.float() / temperature, dim=-1)
    log_p = F.log_softmax(student_logits.float() / temperature, dim=-1).gather(-1, teacher_ids.long())
    per_token = (log_q.exp() * (log_q - log_p)).sum(-1)
    return _masked_mean(per_token, mask)


def kd_loss(ce: torch.Tensor, kl: torch.Tensor, *, alpha: float, temperature: float) -> torch.Tensor:
    """``alpha * CE + (1 - alpha) * T^2 * KL`` (the KD paper's loss)."""
    return alpha * ce + (1.0 - alpha) * temperature**2 * kl
