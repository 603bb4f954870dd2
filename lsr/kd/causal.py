"""Decoder-only (causal LM) students and teachers: the prompt layout, teacher-forced logits, and generation.

A causal example is one sequence ``prompt + summary + eos``: the prompt is the instruction followed by the document
(truncated to the data set's source length), the summary is truncated to its target length, and the labels are
``-100`` on the prompt so the CE and the KL cover the summary tokens only. Generation feeds the prompt (left
padded, so every row's next token follows its own prompt), stops at the end-of-sequence token, and decodes only
the new tokens, with the same presets' lengths as the seq2seq student.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lsr.core.errors import InputError

LABEL_PAD = -100
INSTRUCTION = "Summarize the following news article.\n\nArticle: "
SUMMARY_CUE = "\n\nSummary:"


def causal_rows(
    tokenizer: Any,
    documents: Sequence[str],
    summaries: Sequence[str],
    *,
    source_max_tokens: int,
    target_max_tokens: int,
    instruction: str = INSTRUCTION,
) -> dict[str, list[list[int]]]:
    """Ragged ``input_ids`` (prompt + summary + eos) and ``labels`` (-100 on the prompt), plus ``prompt_lengths``."""
    out: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "prompt_lengths": []}
    for document, summary in zip(documents, summaries, strict=True):
        prompt = prompt_ids(tokenizer, document, source_max_tokens=source_max_tokens, instruction=instruction)
        target = tokenizer(" " + summary.strip(), add_special_tokens=False)["input_ids"][: target_max_tokens - 1]
        target = [*target, tokenizer.eos_token_id]
        out["input_ids"].append(prompt + target)
        out["labels"].append([LABEL_PAD] * len(prompt) + target)
        out["prompt_lengths"].append([len(prompt)])
    return out


def prompt_ids(tokenizer: Any, document: str, *, source_max_tokens: int, instruction: str = INSTRUCTION) -> list[int]:
    """``[bos] instruction document cue``, the document truncated to ``source_max_tokens`` tokens."""
    head = tokenizer(instruction, add_special_tokens=False)["input_ids"]
    # Cut after tokenising (verbose=False: a document longer than the tokenizer's nominal maximum is expected here).
    body = tokenizer(document, add_special_tokens=False, verbose=False)["input_ids"][:source_max_tokens]
    cue = tokenizer(SUMMARY_CUE, add_special_tokens=False)["input_ids"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + head + body + cue


def prompt_overhead(tokenizer: Any, instruction: str = INSTRUCTION) -> int:
    """Tokens of a prompt besides the document's: bos, the instruction and the summary cue."""
    return len(prompt_ids(tokenizer, "", source_max_tokens=0, instruction=instruction))


def source_budget(model: Any, tokenizer: Any, source_max_tokens: int, max_new_tokens: int) -> int:
    """The document tokens a prompt may hold: ``source_max_tokens``, less if the model's positions cannot also hold
    the instruction, the cue and ``max_new_tokens`` new tokens (so a long document never runs past them)."""
    positions = getattr(model.config, "max_position_embeddings", None)
    if not positions:
        return source_max_tokens
    room = positions - prompt_overhead(tokenizer) - max_new_tokens
    if room < 1:
        raise InputError(f"the causal model holds {positions} positions: no room for a document beside the prompt "
                         f"and {max_new_tokens} new tokens")
    return min(source_max_tokens, room)


def causal_logits(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, labels)`` aligned so that ``logits[:, t]`` predicts ``labels[:, t]`` (the usual one-token shift)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return logits[:, :-1], batch["labels"][:, 1:]


def generate_causal(
    model: Any,
    tokenizer: Any,
    documents: Sequence[str],
    *,
    source_max_tokens: int,
    generation_kwargs: dict[str, Any],
    device: str | torch.device = "cpu",
) -> list[str]:
    """Summaries from a causal LM: the prompt in, the new tokens out, stopping at the end of the summary.

    The document is cut to ``source_max_tokens`` (the preset's, as for a seq2seq student), or shorter when the
    model's positions would not hold the prompt and ``max_new_tokens`` more (:func:`source_budget`)."""
    source = source_budget(model, tokenizer, source_max_tokens, int(generation_kwargs.get("max_new_tokens") or 0))
    prompts = [prompt_ids(tokenizer, d, source_max_tokens=source) for d in documents]
    longest = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.tensor([[pad] * (longest - len(p)) + p for p in prompts], device=device)
    attention_mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts], device=device)
    kwargs = {k: v for k, v in generation_kwargs.items() if k not in ("forced_bos_token_id", "forced_eos_token_id")}
    with torch.inference_mode():
        output = model.generate(input_ids=input_ids, attention_mask=attention_mask, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=pad, **kwargs)
    return [text.strip() for text in tokenizer.batch_decode(output[:, longest:], skip_special_tokens=True)]
