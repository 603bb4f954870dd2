"""Fitting a document into the model's context: estimate tokens, cut the document, flag the row.

Call A's prompt holds the document and the gold summary, call B's the document and the rationale (at most
``rationale_max_tokens``); each must leave room for its own completion. The document gets what the larger
of the two leaves. Tokens are counted with a tokenizer when one is given (a local path), else estimated from
words (``tokens_per_word``; 1.4 is generous for Llama-style BPE on English news).

``transformers`` are imported inside the functions that use them: the ``lsr`` command imports this module at start-
up, before it knows which of them a command needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pydantic import Field

from lsr.core.config import StrictModel
from lsr.core.errors import InputError
from lsr.mining.prompts import template_text

#: Chat-template tokens (role headers, special tokens) per call, on top of the message texts.
CHAT_OVERHEAD_TOKENS = 64


class ContextOptions(StrictModel):
    """How a document is fitted into the model's context: the options ``lsr mine`` (every LLM engine) and
    ``lsr plan`` share, declared once here."""

    max_model_len: int = Field(default=8192, ge=256, description="context length; longer documents are cut")
    tokenizer: str | None = Field(default=None, description="local tokenizer path for counting tokens (default: words)")
    tokens_per_word: float = Field(default=1.4, gt=0, description="token estimate without a tokenizer")


@dataclass(frozen=True)
class TokenBudget:
    max_model_len: int
    rationale_max_tokens: int
    summaries_max_tokens: int
    tokens_per_word: float = 1.4
    tokenizer: str | None = None
    structured: bool = False  # the JSON prompts of --structured-output

    def __post_init__(self) -> None:
        if self.max_model_len < 256:
            raise InputError(f"--max-model-len {self.max_model_len}: too small for any prompt (need >= 256)")
        if self.tokens_per_word <= 0:
            raise InputError("--tokens-per-word must be positive")

    def count(self, text: str) -> int:
        if self.tokenizer:
            return len(_load_tokenizer(self.tokenizer)(text, add_special_tokens=False)["input_ids"])
        return int(len(text.split()) * self.tokens_per_word + 0.999)

    def document_budget(self, dataset: str, summary: str) -> int:
        """Tokens the document may use so that both calls fit the context with their completions."""
        template_a = template_text(dataset, "rationale", self.structured)
        template_b = template_text(dataset, "summaries", self.structured)
        call_a = self.count(template_a) + self.count(summary) + self.rationale_max_tokens
        call_b = self.count(template_b) + 2 * self.rationale_max_tokens + self.summaries_max_tokens
        return self.max_model_len - CHAT_OVERHEAD_TOKENS - max(call_a, call_b)

    def fit(self, document: str, dataset: str, summary: str) -> tuple[str, bool]:
        """(the document cut to its budget, whether it was cut); an empty text when nothing fits."""
        budget = self.document_budget(dataset, summary)
        if budget <= 0:
            return "", True
        if self.count(document) <= budget:
            return document, False
        if self.tokenizer:
            encoded = _load_tokenizer(self.tokenizer)(document, add_special_tokens=False, return_offsets_mapping=True)
            end = encoded["offset_mapping"][budget - 1][1]
            return document[:end].rstrip(), True
        words = list(re.finditer(r"\S+", document))
        keep = int(budget / self.tokens_per_word)
        return (document[: words[keep - 1].end()] if keep > 0 else ""), True


@lru_cache(maxsize=2)
def _load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except OSError as err:
        raise InputError(f"--tokenizer {path}: cannot load a tokenizer from it ({err})") from None
