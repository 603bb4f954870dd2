"""Logit knowledge distillation: the KD losses, teachers (online and offline pass), student shrinking.

The method: docs/paper.md#logit-kd and docs/paper.md#seq-kd.
"""
