"""Fixtures of the KD tests (lsr.kd): a tiny BART teacher to distil from."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def save_tiny_bart():
    """``save_tiny_bart(folder, *, layers=2, seed=1, peaked=True, extra_token=False)``: a tiny BART teacher with the
    tiny tokenizer saved in ``folder``; ``peaked`` gives it a strong fixed token preference to learn,
    ``extra_token`` a tokenizer the student does not share."""

    def save(folder: Path, *, layers: int = 2, seed: int = 1, peaked: bool = True, extra_token: bool = False) -> Path:
        import torch
        from transformers import BartConfig, BartForConditionalGeneration

        from lsr.model.loading import TINY_ARCHITECTURE, tiny_tokenizer

        tokenizer = tiny_tokenizer()
        if extra_token:
            tokenizer.add_tokens(["<not-in-the-student>"])
        architecture = {**TINY_ARCHITECTURE, "encoder_layers": layers, "decoder_layers": layers}
        torch.manual_seed(seed)
        model = BartForConditionalGeneration(BartConfig(vocab_size=len(tokenizer), **architecture))
        if peaked:
            model.final_logits_bias.copy_(4.0 * torch.randn_like(model.final_logits_bias))
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return folder

    return save


@pytest.fixture(scope="session")
def teacher(tmp_path_factory, save_tiny_bart) -> Path:
    """A tiny peaked BART teacher (:func:`save_tiny_bart`'s defaults), saved once for the session."""
    return save_tiny_bart(tmp_path_factory.mktemp("teacher") / "tiny-bart")
