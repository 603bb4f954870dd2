"""Training the MWF student (and its baselines) on Ray Train; see :mod:`lsr.train.trainer` for the entry point."""

from lsr.train.settings import TrainSettings, parse_views

__all__ = ["TrainSettings", "parse_views"]
