"""The offline teacher pass on vLLM through ``ray.data.llm``, for decoder-only teachers (the 70B case), on GPUs or
on CPUs (:mod:`lsr.core.vllm`).

vLLM scores a prompt without generating much: with ``prompt_logprobs = k`` every prompt position comes back with
the top-k next-token log-probs (plus the actual token's, which may rank below k). The teacher is given
``prompt + summary + eos`` already tokenised by the student's tokenizer, exactly as training tokenises
(:func:`lsr.model.batching.tokenize_rows`, ``tokenized_prompt``: no tokenize stage runs), asked for one token, and
the entries at the summary positions become the same three columns the transformers pass writes
(:mod:`lsr.model.topk_columns`), with ``teacher_labels`` the row's causal labels (-100 on the prompt) and one
top-k per summary token. vLLM's prompt log-probs are the raw model's (``logprobs_mode`` ``raw_logprobs``), so on
the same weights they equal the transformers pass's log-softmax, which the tests check.

``ray`` are imported inside the functions that use them: the ``lsr`` command imports this module at start-up, before
it knows which of them a command needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from lsr.core.vllm import ResolvedDevice, VllmOptions
from lsr.model.topk_columns import IDS, LABELS, LOGPROBS

#: Columns of ``ray.data.llm``'s engine stage that the pass does not keep.
_ENGINE_COLUMNS = ("tokenized_prompt", "sampling_params", "prompt_logprobs", "generated_text", "generated_tokens",
                   "num_generated_tokens", "num_input_tokens", "prompt", "prompt_token_ids", "request_id", "params",
                   "metrics", "time_taken_llm", "embeddings", "batch_uuid", "logprobs")


class VllmTeacherOptions(VllmOptions):
    """``lsr teacher --engine vllm``: the teacher's vLLM replicas (the rest of the options are the pass's own)."""

    max_model_len: int = Field(default=4096, ge=16, description="vllm: context length of the teacher's engine")


def processor_config(options: VllmTeacherOptions, model: str, *, top_k: int, replicas: int, batch_size: int,
                     device: ResolvedDevice):
    """The ``vLLMEngineProcessorConfig`` of the pass: token ids in, prompt log-probs out, no chat template. On CPU
    the replica is one actor holding its workers' cores (a placement group of CPU bundles on one node)."""
    from ray.data.llm import vLLMEngineProcessorConfig

    engine_kwargs = {
        **options.device_engine_args(device),
        "max_model_len": options.max_model_len,
        # The actual token is returned beside the top k, so vLLM must allow k + 1 log-probs per position.
        "max_logprobs": top_k + 1,
        "enable_prefix_caching": False,  # every prompt is scored once
        **options.extra_engine_kwargs,
    }
    extra: dict[str, Any] = {}
    if device == "cpu":
        bundle = {"CPU": options.cpus_per_worker}
        extra["placement_group_config"] = {"bundles": [bundle] * options.workers_per_replica,
                                           "strategy": "STRICT_PACK"}
        extra["runtime_env"] = {"env_vars": options.process_env(device)}
    return vLLMEngineProcessorConfig(
        model_source=model,
        engine_kwargs=engine_kwargs,
        concurrency=replicas,
        batch_size=batch_size,
        chat_template_stage=False,
        tokenize_stage=False,
        detokenize_stage=False,
        **extra,
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
        ranked = sorted(((float(_logprob(v)), int(k)) for k, v in entry.items()), reverse=True)[:top_k]
        if len(ranked) < top_k:
            raise ValueError(f"vLLM returned {len(ranked)} log-probs at position {t + 1}, fewer than top_k {top_k}")
        ids += [token for _, token in ranked]
        logprobs += [value for value, _ in ranked]
    return {LABELS: list(labels), IDS: ids, LOGPROBS: logprobs}


def _logprob(value: Any) -> float:
    """A log-prob entry as ``ray.data.llm`` hands it over: a dict, or vLLM's ``Logprob`` object."""
    return value["logprob"] if isinstance(value, Mapping) else value.logprob


def build_teacher_processor(options: VllmTeacherOptions, model: str, *, top_k: int, replicas: int, batch_size: int,
                            device: ResolvedDevice):
    """The ``ray.data.llm`` processor: rows with ``input_ids``/``labels`` in; the same rows out, their token ids
    replaced by the teacher columns."""
    from ray.data.llm import build_processor

    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, **teacher_request(row["input_ids"], top_k)}

    def postprocess(row: dict[str, Any]) -> dict[str, Any]:
        columns = topk_from_prompt_logprobs(row["prompt_logprobs"], row["labels"], top_k)
        kept = {k: v for k, v in row.items() if k not in _ENGINE_COLUMNS and k not in ("input_ids", "labels")}
        return {**kept, **columns}

    config = processor_config(options, model, top_k=top_k, replicas=replicas, batch_size=batch_size, device=device)
    return build_processor(config, preprocess=preprocess, postprocess=postprocess)
