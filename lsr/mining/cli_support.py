"""Turning ``lsr mine`` arguments into a :class:`~lsr.mining.pipeline.MineJob`, validated before Ray starts."""

from __future__ import annotations

import argparse

from lsr.config import load_preset
from lsr.errors import InputError
from lsr.mining.budget import TokenBudget
from lsr.mining.engines import HttpEngineConfig, VllmEngineConfig
from lsr.mining.pipeline import MineJob


def job_from_args(args: argparse.Namespace) -> MineJob:
    preset = load_preset(args.dataset, args.config)
    if args.rows_per_file < 1:
        raise InputError("--rows-per-file must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    engine: HttpEngineConfig | VllmEngineConfig | None = None
    budget = None
    if args.engine != "oracle":
        if not args.model:
            raise InputError(f"--model is required with --engine {args.engine}")
        budget = TokenBudget(
            max_model_len=args.max_model_len,
            rationale_max_tokens=preset.mining.rationale_max_tokens,
            summaries_max_tokens=preset.mining.summaries_max_tokens,
            tokens_per_word=args.tokens_per_word,
            tokenizer=args.tokenizer,
        )
    if args.engine == "http":
        if not args.url:
            raise InputError("--url is required with --engine http (e.g. http://host:8000/v1)")
        engine = HttpEngineConfig(
            url=args.url,
            model=args.model,
            api_key_env=args.api_key_env,
            concurrency=args.concurrency,
            batch_size=args.batch_size or 16,
            max_in_flight=args.max_in_flight,
            qps=args.qps,
            max_retries=args.max_retries,
            base_retry_wait_s=args.retry_wait,
            timeout_s=args.timeout,
        )
    elif args.engine == "vllm":
        engine = VllmEngineConfig(
            model_source=args.model,
            tensor_parallel_size=args.tensor_parallel_size,
            pipeline_parallel_size=args.pipeline_parallel_size,
            enable_prefix_caching=not args.no_prefix_caching,
            max_model_len=args.max_model_len,
            replicas=tuple(args.replicas),
            batch_size=args.batch_size or 32,
            gpu_memory_utilization=args.gpu_memory_utilization,
            accelerator_type=args.accelerator_type,
        )
    return MineJob(
        input_path=args.input,
        output_path=args.output,
        dataset=args.dataset,
        mining=preset.mining,
        engine=engine,
        budget=budget,
        limit=args.limit,
        rows_per_file=args.rows_per_file,
    )
