"""``lsr mine --engine vllm`` against the engine itself: is mining as fast as vLLM can go?

The same documents, prompts, schemas and token budgets (both calls of the paper's Step 1 with
``--structured-output``, call B built from call A's parsed reply) go through

- **offline vLLM**: ``LLM.chat`` on every call A at once, then every call B at once: the limit for this engine
  (one engine, every request batched, nothing else running);
- **ray.data.llm**: what a user would pick instead, two ``build_processor`` vLLM processors (chat template,
  tokenize, engine, detokenize), call A's then call B's, with the parse between them as a Ray Data map; and
- **lsr mine**: ``lsr mine --engine vllm --device cpu --structured-output`` as a user runs it (its own process and
  Ray), one replica for both calls.

Each runs in its own process (vLLM spawns processes; each gets a fresh engine) on ``--docs`` documents and on
``--warmup-docs`` documents. Start-up (Ray, the engine's load) is what the small run costs; the steady state is
the difference of the two runs: completion tokens/s = (tokens(N) - tokens(n)) / (seconds(N) - seconds(n)). Offline
vLLM's load and generation are also timed directly. The table gives both ratios of lsr's steady state (goal: >= 0.9
of offline vLLM's, and ahead of ray.data.llm's).

    python bench/bench_vllm_engine.py                  # the tests' tiny random Llama, 128 documents
    python bench/bench_vllm_engine.py --model DIR --docs 512 --max-num-seqs 128

Sizing on 2 CPUs: every engine holds one CPU (``--cpus-per-worker 1``). The ray.data.llm pipeline has two engine
actors plus three CPU stages; with Ray's default CPUs its chat-template and tokenize actors took both CPUs and the
engine stayed pending (a deadlock), so its CPU stages get a quarter CPU each and Ray four logical CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "lsr" / "samples" / "cnndm_sample.jsonl"
sys.path.insert(0, str(REPO))

from lsr.config import preset  # noqa: E402
from lsr.mining.budget import TokenBudget  # noqa: E402
from lsr.mining.rows import MineSettings, after_rationale, rationale_request, summaries_request  # noqa: E402

DATASET = "cnndm"
MAX_MODEL_LEN = 4096


def _settings(chars_per_token: float) -> MineSettings:
    mining = preset(DATASET).mining
    return MineSettings(dataset=DATASET, engine="vllm", model="bench", structured=True,
                        json_chars_per_token=chars_per_token, rationale_max_tokens=mining.rationale_max_tokens,
                        summaries_max_tokens=mining.summaries_max_tokens)


def write_documents(n: int, path: Path, tokenizer: str) -> None:
    """``n`` CNN/DM documents (the shipped sample, cycled with distinct ids), cut to the context as lsr cuts them."""
    rows = [json.loads(line) for line in SAMPLES.read_text().splitlines() if line.strip()]
    mining = preset(DATASET).mining
    budget = TokenBudget(max_model_len=MAX_MODEL_LEN, rationale_max_tokens=mining.rationale_max_tokens,
                         summaries_max_tokens=mining.summaries_max_tokens, tokenizer=tokenizer, structured=True)
    with path.open("w") as out:
        for i in range(n):
            row = rows[i % len(rows)]
            document = f"(Copy {i // len(rows)}.) {row['document']}" if i >= len(rows) else row["document"]
            prompt_document, cut = budget.fit(document, DATASET, row["summary"])
            out.write(json.dumps({"id": f"d{i}", "document": document, "summary": row["summary"],
                                  "prompt_document": prompt_document, "truncated": cut}) + "\n")


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------------- the three contenders


def run_offline(args: argparse.Namespace) -> dict[str, Any]:
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from lsr.mining.engines.base import CallResult

    settings = _settings(args.json_chars_per_token)
    rows = _rows(args.documents)
    started = time.monotonic()
    llm = LLM(model=args.model, dtype="float32", enforce_eager=True, max_model_len=MAX_MODEL_LEN,
              max_num_seqs=args.max_num_seqs, enable_prefix_caching=True, kv_cache_memory_bytes=int(args.kv_cache_gib
              * 2**30), structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True})
    loaded = time.monotonic()

    def chat(requests):
        params = [SamplingParams(temperature=r.temperature, max_tokens=r.max_tokens,
                                 structured_outputs=StructuredOutputsParams(json=r.schema)) for r in requests]
        outputs = llm.chat([r.messages for r in requests], params, use_tqdm=False)
        return [CallResult(o.outputs[0].text, len(o.prompt_token_ids), len(o.outputs[0].token_ids), None,
                           o.outputs[0].finish_reason) for o in outputs]

    results_a = chat([rationale_request(row, settings) for row in rows])
    after = [after_rationale(row, result, settings) for row, result in zip(rows, results_a, strict=True)]
    requests_b = [r for r in (summaries_request(a, settings) for a in after) if r is not None]
    results_b = chat(requests_b)
    done = time.monotonic()
    results = results_a + results_b
    return {"seconds": done - started, "load_s": loaded - started, "generate_s": done - loaded,
            "completion_tokens": sum(r.completion_tokens for r in results),
            "prompt_tokens": sum(r.prompt_tokens for r in results), "calls_b": len(requests_b)}


def run_ray_data_llm(args: argparse.Namespace) -> dict[str, Any]:
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    from lsr.mining.engines.base import CallResult

    settings = _settings(args.json_chars_per_token)
    started = time.monotonic()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    light = {"num_cpus": 0.25, "concurrency": 1}

    def processor(max_tokens: int):
        config = vLLMEngineProcessorConfig(
            model_source=args.model,
            engine_kwargs={"dtype": "float32", "enforce_eager": True, "max_model_len": MAX_MODEL_LEN,
                           "max_num_seqs": args.max_num_seqs, "enable_prefix_caching": True,
                           "kv_cache_memory_bytes": int(args.kv_cache_gib * 2**30),
                           "distributed_executor_backend": "mp",
                           "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True}},
            placement_group_config={"bundles": [{"CPU": 1}]},
            batch_size=args.max_num_seqs, concurrency=1,
            chat_template_stage=light, tokenize_stage=light, detokenize_stage=light,
        )

        def preprocess(row):
            request = row["request"]
            return {**row, "messages": request["messages"],
                    "sampling_params": {"temperature": 0.0, "max_tokens": max_tokens,
                                        "structured_outputs": {"json": request["schema"]}}}

        def postprocess(row):
            return {"row": row["row"], "text": row["generated_text"], "prompt_tokens": row["num_input_tokens"],
                    "completion_tokens": row["num_generated_tokens"], "a_completion": row.get("a_completion", 0)}

        return build_processor(config, preprocess=preprocess, postprocess=postprocess)

    def as_request(request) -> dict[str, Any]:
        return {"messages": request.messages, "schema": request.schema}

    rows = _rows(args.documents)
    ds = ray.data.from_items([{"row": row, "request": as_request(rationale_request(row, settings))} for row in rows])
    a_out = processor(settings.rationale_max_tokens)(ds)

    def parse_then_b(item):
        after = after_rationale(item["row"], CallResult(item["text"], None, None, None), settings)
        request = summaries_request(after, settings)
        return [{"row": after, "request": as_request(request), "a_completion": item["completion_tokens"]}] \
            if request else []

    b_in = a_out.flat_map(parse_then_b)
    out = processor(settings.summaries_max_tokens)(b_in).materialize()
    done = time.monotonic()
    totals = out.to_pandas()
    # Calls B and their calls A (a call A whose reply did not parse has no call B and is not counted: the table's
    # "calls B" column shows when that happened).
    result = {"seconds": done - started, "calls_b": len(totals),
              "completion_tokens": int(totals["completion_tokens"].sum() + totals["a_completion"].sum()),
              "prompt_tokens": int(totals["prompt_tokens"].sum())}
    ray.shutdown()
    return result


def run_lsr(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mined"
        command = [sys.executable, "-m", "lsr.cli", "mine", "--input", str(args.documents), "--output", str(out),
                   "--dataset", DATASET, "--engine", "vllm", "--device", "cpu", "--model", args.model,
                   "--max-model-len", str(MAX_MODEL_LEN), "--kv-cache-gib", str(args.kv_cache_gib),
                   "--max-num-seqs", str(args.max_num_seqs), "--dtype", "float32", "--structured-output",
                   "--json-chars-per-token", str(args.json_chars_per_token), "--tokenizer", args.model]
        env = {**os.environ, "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "RAY_ADDRESS": ""}
        started = time.monotonic()
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if done.returncode not in (0, 3):
            raise SystemExit(f"lsr mine failed ({done.returncode}):\n{done.stderr[-3000:]}")
        report = json.loads((Path(tmp) / "mined.report.json").read_text())
    return {"seconds": seconds, "completion_tokens": report["completion_tokens_total"],
            "prompt_tokens": report["prompt_tokens_total"], "calls_b": report["summaries_replies"]}


CONTENDERS = {"offline vLLM": run_offline, "ray.data.llm": run_ray_data_llm, "lsr mine": run_lsr}


# -------------------------------------------------------------------------------------------------- driver


def _child(name: str, args: argparse.Namespace, documents: Path) -> dict[str, Any]:
    """One contender on one document file, in a process of its own (a fresh engine; vLLM spawns processes)."""
    command = [sys.executable, __file__, "--run", name, "--documents-file", str(documents), "--model", args.model,
               "--max-num-seqs", str(args.max_num_seqs), "--kv-cache-gib", str(args.kv_cache_gib),
               "--json-chars-per-token", str(args.json_chars_per_token)]
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "RAY_ADDRESS": ""})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a local model folder (default: the tests' tiny random Llama, built here)")
    parser.add_argument("--docs", type=int, default=128)
    parser.add_argument("--warmup-docs", type=int, default=4)
    parser.add_argument("--max-num-seqs", type=int, default=64)
    parser.add_argument("--kv-cache-gib", type=float, default=1.0)
    parser.add_argument("--json-chars-per-token", type=float, default=1.0,
                        help="1 for the random model (it writes runs of one-character tokens); 3 for a real one")
    parser.add_argument("--run", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--documents-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        args.documents = args.documents_file
        print("RESULT " + json.dumps(CONTENDERS[args.run](args)), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            from lsr.model.tiny_llama import build_tiny_llama

            args.model = str(build_tiny_llama(Path(tmp) / "tiny-llama"))
        small, large = Path(tmp) / "small.jsonl", Path(tmp) / "large.jsonl"
        write_documents(args.warmup_docs, small, args.model)
        write_documents(args.docs, large, args.model)
        results = {}
        for name in CONTENDERS:
            runs = {n: _child(name, args, path) for n, path in ((args.warmup_docs, small), (args.docs, large))}
            results[name] = runs
            print(f"{name}: {json.dumps(runs)}", file=sys.stderr, flush=True)
    print(f"\n{args.docs} documents (start-up from {args.warmup_docs}), both calls, --structured-output, "
          f"max_num_seqs {args.max_num_seqs}, model {args.model}\n")
    print("| | start-up s | total s | completion tokens | steady completion tokens/s | calls B |")
    print("|---|---:|---:|---:|---:|---:|")
    steady = {}
    for name, runs in results.items():
        small_run, large_run = runs[args.warmup_docs], runs[args.docs]
        seconds = large_run["seconds"] - small_run["seconds"]
        tokens = large_run["completion_tokens"] - small_run["completion_tokens"]
        steady[name] = tokens / seconds if seconds > 0 else float("nan")
        print(f"| {name} | {small_run['seconds']:.1f} | {large_run['seconds']:.1f} | {large_run['completion_tokens']} "
              f"| {steady[name]:.0f} | {large_run['calls_b']} |")
    offline = results["offline vLLM"][args.docs]
    print(f"\noffline vLLM measured directly: load {offline['load_s']:.1f} s, generation {offline['generate_s']:.1f} s "
          f"({offline['completion_tokens'] / offline['generate_s']:.0f} completion tokens/s)")
    print(f"lsr / offline vLLM (steady state): {steady['lsr mine'] / steady['offline vLLM']:.2f}")
    print(f"lsr / ray.data.llm (steady state): {steady['lsr mine'] / steady['ray.data.llm']:.2f}")


if __name__ == "__main__":
    main()
