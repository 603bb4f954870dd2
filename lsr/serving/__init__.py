"""Serving (the pipeline's last stage): the distilled model behind a Ray Serve summarisation endpoint.

``config`` (the typed stage config), ``schema`` (the HTTP contract), ``summarizer`` (the model and batching
logic, no Ray), ``auth`` (optional bearer token), ``page`` (the HTML at ``/``) and ``app`` (the Serve
deployment and its builder). Import :mod:`lsr.serving.app` only where Ray Serve is wanted.
"""

from lsr.serving.config import ServeConfig

__all__ = ["ServeConfig"]
