"""Logit knowledge distillation (DESIGN.md §4): the KD losses, teachers (online and offline pass), student shrinking."""
