"""Shared plumbing below the stages: what more than one stage needs and no stage owns."""
