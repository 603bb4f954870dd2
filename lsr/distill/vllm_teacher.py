"""The offline teacher pass on vLLM through ``ray.data.llm``, for decoder-only teachers (the 70B case).

vLLM scores a prompt without generating much: with ``prompt_logprobs = k`` every prompt position comes back with
the top-k next-token log-probs (plus the actual token's, which may rank below k). The teacher is given
``prompt + summary + eos`` already tokenised (:func:`lsr.distill.causal.causal_rows`, ``tokenized_prompt``, so the
student's tokenizer decides the ids and no tokenize stage runs), asked for one token, and the entries at the
summary positions become the same three columns the transformers pass writes (:mod:`lsr.distill.topk_columns`),
with ``teacher_labels`` the row's causal labels (-100 on the prompt) and one top-k per summary token.

Built and checked structurally here (no GPU); it runs where vLLM is installed (the ``[gpu]`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from lsr.config import StrictModel
from lsr.distill.topk_columns import IDS, LABELS, LOGPROBS


class VllmTeacherConfig(StrictModel):
    """A vLLM teacher: where its weights are, how it is split over GPUs, how many replicas score in parallel."""

    model_source: str = Field(description="the teacher's weights (local folder or hub id already cached)")
    top_k: int = Field(default=20, ge=1, description="log-probs kept per summary position")
    tensor_parallel_size: int = Field(default=1, ge=1)
    replicas: int = Field(default=1, ge=1, description="vLLM engines scoring in parallel")
    batch_size: int = Field(default=16, ge=1)
    max_model_len: int = Field(default=4096, ge=16)


def vllm_teacher_processor_config(config: VllmTeacherConfig):
    """The ``vLLMEngineProcessorConfig`` of the pass: token ids in, prompt log-probs out, no chat template."""
    from ray.data.llm import vLLMEngineProcessorConfig

    return vLLMEngineProcessorConfig(
        model_source=config.model_source,
        engine_kwargs={
            "tensor_parallel_size": config.tensor_parallel_size,
            "max_model_len": config.max_model_len,
            # The actual token is returned beside the top k, so vLLM must allow k + 1 log-probs per position.
            "max_logprobs": config.top_k + 1,
            "enable_prefix_caching": False,  # every prompt is scored once
        },
        concurrency=config.replicas,
        batch_size=config.batch_size,
        chat_template_stage=False,
        tokenize_stage=False,
        detokenize_stage=False,
    )


def teacher_request(input_ids: Sequence[int], top_k: int) -> dict[str, Any]:
    """One row's request: the whole sequence as the prompt, one token generated, top-k prompt log-probs."""
    return {
        "tokenized_prompt": list(input_ids),
        "sampling_params": {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": top_k},
    }


def topk_from_prompt_logprobs(
    prompt_logprobs: Sequence[Mapping[Any, Mapping[str, Any]] | None], labels: Sequence[int], top_k: int
) -> dict[str, list[Any]]:
    """The three teacher columns from vLLM's per-position dicts (``token_id -> {"logprob": ...}``).

    ``prompt_logprobs[t]`` is the distribution of token ``t`` given the tokens before it (entry 0 is ``None``);
    ``labels`` is the causal layout (-100 on the prompt), so the summary positions are those with a label.
    """
    shifted = list(labels[1:])  # causal_logits' alignment: logits position t predicts token t + 1
    ids: list[int] = []
    logprobs: list[float] = []
    for t, label in enumerate(shifted):
        if label == -100:
            continue
        entry = prompt_logprobs[t + 1] or {}
        ranked = sorted(((float(v["logprob"]), int(k)) for k, v in entry.items()), reverse=True)[:top_k]
        if len(ranked) < top_k:
            raise ValueError(f"vLLM returned {len(ranked)} log-probs at position {t + 1}, fewer than top_k {top_k}")
        ids += [token for _, token in ranked]
        logprobs += [value for value, _ in ranked]
    return {LABELS: list(labels), IDS: ids, LOGPROBS: logprobs}


def build_teacher_processor(config: VllmTeacherConfig):
    """The ``ray.data.llm`` processor: rows with ``input_ids``/``labels`` in, the teacher columns added."""
    from ray.data.llm import build_processor

    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        return teacher_request(row["input_ids"], config.top_k)

    def postprocess(row: dict[str, Any]) -> dict[str, Any]:
        return {**topk_from_prompt_logprobs(row["prompt_logprobs"], row["labels"], config.top_k), "id": row["id"]}

    return build_processor(vllm_teacher_processor_config(config), preprocess=preprocess, postprocess=postprocess)
