"""Summed token entropy of each chain piece under a scorer model (the AS-ES paper's segmentation signal).

The scorer reads the document and predicts the chain token by token; at each chain token the entropy of its
predictive distribution, ``-sum p log p``, says how much the model had to choose there (copying from the document
is cheap, writing its own words is not). A piece's score is the sum over its tokens.

Any causal or seq2seq checkpoint works: a seq2seq scorer encodes the document and decodes the chain; a causal one
reads ``document + chain`` and is scored on the chain's positions (the document is cut from the left to fit). Each
piece is tokenised on its own (with a leading space after the first), so every token belongs to exactly one piece;
a chain cut by ``max_tokens`` scores the pieces past the cut as 0 and says so through the ``truncated`` count.

``transformers`` is imported inside the functions that use it, so that importing this module for one of its
functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lsr.core.errors import InputError
from lsr.model.auto import load_pretrained, read_config


def token_entropies(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each row's predictive distribution: ``logits`` (T, V) -> (T,)."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def sum_per_piece(values: Sequence[float], piece_lengths: Sequence[int]) -> list[float]:
    """``values`` (one per chain token) summed per piece; pieces past the end of ``values`` sum to 0."""
    sums, start = [], 0
    for length in piece_lengths:
        sums.append(float(sum(values[start : start + length])))
        start += length
    return sums


def load_scorer(path: str, device: str = "cpu") -> tuple[Any, Any, bool]:
    """``(model, tokenizer, is_seq2seq)`` of a causal or seq2seq checkpoint folder, in eval mode."""
    from transformers import AutoTokenizer


    try:
        config = read_config(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise InputError(f"--scorer {path!r}: not a model checkpoint folder ({str(err).splitlines()[0]})") from None
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    return load_pretrained(path, config).to(device).eval(), tokenizer, seq2seq


class EntropyScorer:
    """Scores the pieces of chains; built once per Ray Data actor (one model per actor)."""

    def __init__(self, path: str, max_tokens: int = 1024):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model, self.tokenizer, self.seq2seq = load_scorer(path, self.device)
        # Never past the model's positions (a causal scorer also needs one document token before the chain).
        positions = getattr(self.model.config, "max_position_embeddings", None)
        self.max_tokens = min(max_tokens, positions - 1) if positions else max_tokens

    def _piece_ids(self, pieces: Sequence[str]) -> list[list[int]]:
        texts = [p if i == 0 else " " + p for i, p in enumerate(pieces)]
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    @torch.inference_mode()
    def score(self, document: str, pieces: Sequence[str]) -> tuple[list[float], int]:
        """Summed entropy per piece, and how many pieces the ``max_tokens`` cut left (partly) unscored."""
        piece_ids = self._piece_ids(pieces)
        lengths = [len(ids) for ids in piece_ids]
        chain = [t for ids in piece_ids for t in ids][: self.max_tokens]
        if not chain:
            return [0.0] * len(pieces), 0
        if self.seq2seq:
            values = self._seq2seq_entropies(document, chain)
        else:
            values = self._causal_entropies(document, chain)
        covered, truncated = 0, 0
        for length in lengths:
            covered += length
            truncated += covered > len(chain)
        return sum_per_piece(values.tolist(), lengths), truncated

    def _seq2seq_entropies(self, document: str, chain: list[int]) -> torch.Tensor:
        encoded = self.tokenizer(document, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        start = self.model.config.decoder_start_token_id
        decoder_input = torch.tensor([[start, *chain[:-1]]], device=self.device)
        logits = self.model(
            input_ids=encoded["input_ids"].to(self.device),
            attention_mask=encoded["attention_mask"].to(self.device),
            decoder_input_ids=decoder_input,
        ).logits[0]
        return token_entropies(logits)

    def _causal_entropies(self, document: str, chain: list[int]) -> torch.Tensor:
        limit = getattr(self.model.config, "max_position_embeddings", None) or self.max_tokens * 2
        room = limit - len(chain)  # at least 1: the chain is at most max_tokens <= limit - 1
        doc_ids = self.tokenizer(document + "\n", add_special_tokens=True)["input_ids"][-room:]
        ids = torch.tensor([[*doc_ids, *chain]], device=self.device)
        logits = self.model(input_ids=ids).logits[0]
        # The logits at position i predict token i + 1: the chain's tokens are predicted from len(doc_ids) - 1 on.
        return token_entropies(logits[len(doc_ids) - 1 : len(doc_ids) - 1 + len(chain)])
