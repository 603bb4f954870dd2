"""The prompt a decoder-only (causal LM) student reads: the instruction, the document, the summary cue.

A causal example is one sequence ``prompt + summary + eos``: the prompt is the instruction followed by the document
(truncated to the data set's source length), the summary is truncated to its target length, and the labels are
``-100`` on the prompt so the CE and the KL cover the summary tokens only. The rows students and KD teachers are
fed (:func:`lsr.model.batching.tokenize_rows`) and generation (:func:`lsr.model.generate.generate_causal`) both
build it here, so a student is asked at test time exactly what it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
