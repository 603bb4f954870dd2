"""lsr: distilling an LLM's summarisation skill into a small model, on Ray."""

__version__ = "0.1.0"
