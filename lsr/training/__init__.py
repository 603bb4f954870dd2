"""Training the MWF student (and its baselines) on Ray Train; :func:`lsr.training.trainer.train` is the entry point.

``config`` (the run's typed config), ``objectives/`` (one file each + a registry), ``targets`` and
``target_pass`` (the alignment targets, encoded once by the initial encoder on Ray Data), ``data`` (tokenisation
and padding), ``loop`` (the per-worker loop), ``checkpoints``, ``schedule`` (Noam), ``gates_plot`` (Figure 4).
"""

from lsr.training.config import TrainConfig

__all__ = ["TrainConfig"]
