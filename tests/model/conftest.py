"""Fixtures of the MWF student's tests (lsr.model): a tiny BART architecture, its plain and gated models, a batch."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_architecture() -> dict:
    """The tiny BART architecture of these tests (no dropout, so that two forward passes agree)."""
    return dict(
        vocab_size=96,
        d_model=32,
        encoder_layers=2,
        decoder_layers=3,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        dropout=0.0,
    )


@pytest.fixture(scope="session")
def tiny_bart(tiny_architecture):
    """``tiny_bart(seed=0)``: a plain BART of the tiny architecture, seeded, in eval mode."""
    from transformers import BartConfig, BartForConditionalGeneration

    def build(seed: int = 0) -> BartForConditionalGeneration:
        torch.manual_seed(seed)
        return BartForConditionalGeneration(BartConfig(**tiny_architecture)).eval()

    return build


@pytest.fixture(scope="session")
def tiny_mwf(tiny_architecture):
    """``tiny_mwf(seed=0, **mwf)``: the MWF student of the tiny architecture with ``mwf`` settings, in eval mode."""
    from lsr.model import GatedBartConfig, GatedBartForConditionalGeneration

    def build(seed: int = 0, **mwf) -> GatedBartForConditionalGeneration:
        torch.manual_seed(seed)
        return GatedBartForConditionalGeneration(GatedBartConfig(**tiny_architecture, **mwf)).eval()

    return build


@pytest.fixture(scope="session")
def batch(tiny_architecture):
    """``batch(seed=1, size=3, doc_len=12, tgt_len=7)``: random documents (the last one padded), labels with -100
    padding, and a stored target per view and row."""
    from lsr.model import VIEWS

    def build(seed: int = 1, size: int = 3, doc_len: int = 12, tgt_len: int = 7) -> dict:
        gen = torch.Generator().manual_seed(seed)
        ids = torch.randint(3, tiny_architecture["vocab_size"], (size, doc_len), generator=gen)
        mask = torch.ones_like(ids)
        ids[-1, doc_len - 4 :], mask[-1, doc_len - 4 :] = 1, 0
        labels = torch.randint(3, tiny_architecture["vocab_size"], (size, tgt_len), generator=gen)
        labels[-1, tgt_len - 2 :] = -100
        targets = torch.randn(size, len(VIEWS), tiny_architecture["d_model"], generator=gen)
        present = torch.ones(size, len(VIEWS), dtype=torch.bool)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "view_targets": targets,
                "view_target_mask": present}

    return build
