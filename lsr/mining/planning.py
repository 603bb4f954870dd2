"""``lsr plan``: what mining the whole input will cost, measured on a sample before a cluster is paid for.

The plan counts the tokens of the real prompts (:mod:`lsr.mining.prompts`, the documents cut to the context exactly as
mining cuts them, :class:`lsr.mining.budget.TokenBudget`) on a seeded sample of the input, with the model's
tokenizer when one is given as a local path and the budget's word estimate otherwise, and scales them to the
whole input. Time on the cluster follows from two throughputs per engine replica (``tensor_parallel_size`` GPUs):

- **completion tokens per second** (``--tokens-per-second``). The default is a published measurement of vLLM
  serving a 70B Llama under a saturating load: LambdaLabsML/vllm-benchmark, ``benchmark_v0.md``, "Tensor Parallel
  v.s. Data Parallel" table (vLLM 0.5.4, Meta-Llama-3.1-70B-Instruct-FP8, 320 concurrent prompts, output tokens/s
  of the whole tensor-parallel group): 2572.8 on 8 x H100-80GB-SXM, 2242.99 on 4, 1727.69 on 2, 418.92 on 1.
  Their prompts are short (ShareGPT-like), so the figure is close to pure decoding speed; newer vLLM releases are
  faster (the same report measures about 2x with vLLM 0.6's multi-step scheduling), so the default errs on the
  side of cost. Another model or GPU needs its own figure: measure it (``vllm bench serve``) and pass it.
- **prompt (prefill) tokens per second** (``--prefill-tokens-per-second``). No published vLLM figure isolates
  prefill for this setting, so the default is derived, and says so: prefill is compute-bound, costing about
  2 x parameters FLOPs per token, so a replica prefills ``tp x peak x utilisation / (2 x params)`` tokens a
  second; with H100 SXM's dense BF16 peak of 989 TFLOP/s (NVIDIA's data sheet), 40% utilisation (a typical
  model-FLOPs utilisation for large-batch prefill) and 70e9 parameters that is about 22,600 tokens/s at
  tensor-parallel 8. Call B repeats call A's system message and document (they come first in both prompts), so
  with prefix caching on only call B's remaining tokens are prefilled again.

Completion lengths: the mining presets' ``max_tokens`` only bound a completion; the expected length follows the
gold summary, which call A restates line by line and call B rewrites. Rule: expected call A completion =
``rationale_length_factor`` x gold summary tokens, expected call B completion = ``summaries_length_factor`` x gold
summary tokens, each capped at its preset maximum. Defaults: 2.5 (both data sets) and 1.5 (CNN/DM: one
sub-summary per summary sentence plus a total summary) or 1.0 (XSum: one sentence). They come from outputs of the
kind a 70B instruct model writes for these prompts: about 33 words per CNN/DM rationale line (a gold highlight
sentence has about 13) and 54 for an XSum line (a gold summary about 21), about 13 words per sub-summary. The
worst case puts every completion at its maximum. Both are printed; override the factors once real outputs exist.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from lsr.core.cli_config import Flag
from lsr.core.config import Dataset, MiningPreset, StageConfig
from lsr.core.errors import InputError
from lsr.mining.budget import ContextOptions

#: Completion tokens/s of one vLLM replica of a 70B Llama, by tensor-parallel size (the GPUs of the replica):
#: LambdaLabsML/vllm-benchmark, benchmark_v0.md, H100-80GB-SXM, Meta-Llama-3.1-70B-Instruct-FP8, vLLM 0.5.4.
PUBLISHED_DECODE_TOKENS_PER_SECOND = {1: 418.92, 2: 1727.69, 4: 2242.99, 8: 2572.8}
DECODE_SOURCE = (
    "published: LambdaLabsML/vllm-benchmark benchmark_v0.md, vLLM 0.5.4, Llama-3.1-70B-Instruct-FP8 on {tp} x "
    "H100-80GB-SXM, 320 concurrent prompts"
)
H100_DENSE_BF16_TFLOPS = 989.0  # NVIDIA H100 SXM data sheet, dense (no sparsity)
PREFILL_UTILISATION = 0.4
ASSUMED_PARAMS_BILLIONS = 70.0

#: Expected completion tokens per gold summary token, per data set (see the module docstring for the rule).
LENGTH_FACTORS = {"cnndm": (2.5, 1.5), "xsum": (2.5, 1.0)}


class PlanConfig(StageConfig, ContextOptions):
    """``lsr plan``: the sample, the cluster, and every throughput assumption (each printed with its source); the
    context options are ``lsr mine``'s (:class:`~lsr.mining.budget.ContextOptions`; ``--tokenizer`` defaults to
    ``--model`` when that is a folder)."""

    input: str = Field(description="the documents to mine: jsonl/parquet/csv file or folder, local or s3://")
    dataset: Dataset = Field(description="picks the prompts and the completion budgets")
    # Not named `model`: that is the name of a data-set section (the student's settings), see lsr.core.config.SECTIONS.
    mining_model: Annotated[str, Flag(name="--model")] = Field(
        description="the mining model (a name, or a local folder whose tokenizer is then used)"
    )
    gpus_per_node: int = Field(ge=1, description="GPUs of each mining node")
    nodes: int = Field(default=1, ge=1, description="mining nodes")
    tensor_parallel_size: int = Field(default=8, ge=1, description="GPUs per engine replica")
    tokens_per_second: float | None = Field(
        default=None, gt=0, description="completion tokens/s of one replica (default: a published vLLM figure)"
    )
    prefill_tokens_per_second: float | None = Field(
        default=None, gt=0, description="prompt tokens/s of one replica (default: derived from H100 FLOPs)"
    )
    prefix_caching: bool = Field(default=True, description="call B reuses call A's document prefix (as lsr mine)")
    sample: int = Field(default=200, ge=1, description="documents measured (a seeded uniform sample)")
    seed: int = Field(default=0, description="seed of the sample")
    documents: int | None = Field(
        default=None, ge=1, description="documents in the whole input (default: counted, reading the input once)"
    )
    rationale_length_factor: float | None = Field(
        default=None, gt=0, description="expected call A completion per gold summary token (default 2.5)"
    )
    summaries_length_factor: float | None = Field(
        default=None, gt=0, description="expected call B completion per gold summary token (cnndm 1.5, xsum 1.0)"
    )
    mining: MiningPreset
    ray_address: Annotated[str | None, Flag(cli=False)] = None  # a plan runs no Ray

    @model_validator(mode="after")
    def _replica_fits_a_node(self) -> PlanConfig:
        if self.tensor_parallel_size > self.gpus_per_node:
            raise ValueError(
                f"--tensor-parallel-size {self.tensor_parallel_size} needs more GPUs than a node has "
                f"(--gpus-per-node {self.gpus_per_node})"
            )
        if self.tokens_per_second is None and self.tensor_parallel_size not in PUBLISHED_DECODE_TOKENS_PER_SECOND:
            raise ValueError(
                f"no published throughput for --tensor-parallel-size {self.tensor_parallel_size}; "
                "pass --tokens-per-second"
            )
        return self

    def tokenizer_path(self) -> str | None:
        if self.tokenizer:
            return self.tokenizer
        return self.mining_model if Path(self.mining_model).is_dir() else None


# ------------------------------------------------------------------------------------------- the assumptions


@dataclass(frozen=True)
class Assumption:
    flag: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class Throughput:
    """Per-replica throughputs and the cluster's replicas, each with where it comes from."""

    decode: Assumption
    prefill: Assumption
    replicas: int
    idle_gpus: int
    gpus: int


def throughput(config: PlanConfig) -> Throughput:
    tp = config.tensor_parallel_size
    if config.tokens_per_second is not None:
        decode = Assumption("--tokens-per-second", config.tokens_per_second, "completion tokens/s per replica",
                            "given")
    else:
        decode = Assumption("--tokens-per-second", PUBLISHED_DECODE_TOKENS_PER_SECOND[tp],
                            "completion tokens/s per replica", DECODE_SOURCE.format(tp=tp))
    if config.prefill_tokens_per_second is not None:
        prefill = Assumption("--prefill-tokens-per-second", config.prefill_tokens_per_second,
                             "prompt tokens/s per replica", "given")
    else:
        value = tp * H100_DENSE_BF16_TFLOPS * 1e12 * PREFILL_UTILISATION / (2 * ASSUMED_PARAMS_BILLIONS * 1e9)
        prefill = Assumption(
            "--prefill-tokens-per-second", value, "prompt tokens/s per replica",
            f"derived: {tp} x {H100_DENSE_BF16_TFLOPS:g} TFLOP/s (H100 SXM dense BF16) x {PREFILL_UTILISATION:.0%} "
            f"utilisation / (2 x {ASSUMED_PARAMS_BILLIONS:g}e9 FLOPs per token), an assumption",
        )
    per_node = config.gpus_per_node // tp
    gpus = config.nodes * config.gpus_per_node
    return Throughput(decode, prefill, per_node * config.nodes, gpus - per_node * config.nodes * tp, gpus)


def length_factors(config: PlanConfig) -> tuple[Assumption, Assumption]:
    default_a, default_b = LENGTH_FACTORS[config.dataset]
    given_a, given_b = config.rationale_length_factor, config.summaries_length_factor
    origin = "; default from 70B-style outputs (lsr/mining/planning.py's docstring)"
    a = Assumption(
        "--rationale-length-factor", given_a or default_a, "call A completion tokens per gold summary token",
        f"capped at --rationale-max-tokens {config.mining.rationale_max_tokens}" + ("" if given_a else origin),
    )
    b = Assumption(
        "--summaries-length-factor", given_b or default_b, "call B completion tokens per gold summary token",
        f"capped at --summaries-max-tokens {config.mining.summaries_max_tokens}" + ("" if given_b else origin),
    )
    return a, b


# ------------------------------------------------------------------------------------------- measuring tokens


@dataclass(frozen=True)
class DocumentTokens:
    """One sampled document's tokens, per call: prompts as sent, completions expected and at their maximum."""

    prompt_a: int
    prompt_b_expected: int  # call B's prompt holds call A's completion: expected length
    prompt_b_worst: int  # ... or its maximum
    shared_prefix: int  # system message + document: prefilled once when prefix caching is on
    completion_a_expected: int
    completion_b_expected: int
    completion_a_worst: int
    completion_b_worst: int
    cut: bool  # the document was cut to fit the context, as mining would


def measure_document(document: str, summary: str, config: PlanConfig, counter) -> DocumentTokens:
    """The tokens of both mining calls for one document, with ``counter`` (a :class:`TokenBudget`)."""
    from lsr.mining.budget import CHAT_OVERHEAD_TOKENS
    from lsr.mining.prompts import SYSTEM, _document_block, rationale_messages, summaries_messages

    fitted, cut = counter.fit(document, config.dataset, summary)

    def tokens(messages) -> int:
        return sum(counter.count(m["content"]) for m in messages) + CHAT_OVERHEAD_TOKENS

    factor_a, factor_b = (f.value for f in length_factors(config))
    gold = counter.count(summary)
    cap_a, cap_b = config.mining.rationale_max_tokens, config.mining.summaries_max_tokens
    expected_a = min(cap_a, math.ceil(factor_a * gold))
    expected_b = min(cap_b, math.ceil(factor_b * gold))
    prompt_b = tokens(summaries_messages(fitted, "", config.dataset))
    return DocumentTokens(
        prompt_a=tokens(rationale_messages(fitted, summary, config.dataset)),
        prompt_b_expected=prompt_b + expected_a,
        prompt_b_worst=prompt_b + cap_a,
        shared_prefix=counter.count(SYSTEM) + counter.count(_document_block(fitted)),
        completion_a_expected=expected_a,
        completion_b_expected=expected_b,
        completion_a_worst=cap_a,
        completion_b_worst=cap_b,
        cut=cut,
    )


@dataclass
class InputSample:
    """A seeded uniform sample of the usable rows, and how many usable rows the whole input holds."""

    rows: list[tuple[str, str]]
    documents: int
    counted: bool  # False when the count was given (--documents)
    removed: dict[str, int] = field(default_factory=dict)
    files: int = 0


def read_sample(path: str, size: int, *, seed: int = 0, documents: int | None = None) -> InputSample:
    """Reservoir-sample ``size`` usable rows of ``path`` in one streaming pass (no Ray, nothing held but the
    sample); with ``documents`` given, only the first ``size`` usable rows are read and the count is trusted."""
    from lsr.data.io import DROP_REASON, marked_rows

    files, tables = marked_rows(path)
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    seen = 0
    removed: dict[str, int] = {}
    for marked in tables:
        for document, summary, reason in zip(
            marked.column("document").to_pylist(), marked.column("summary").to_pylist(),
            marked.column(DROP_REASON).to_pylist(), strict=True,
        ):
            if reason:
                removed[reason] = removed.get(reason, 0) + 1
                continue
            if len(rows) < size:
                rows.append((document, summary))
            else:
                slot = rng.randrange(seen + 1)
                if slot < size:
                    rows[slot] = (document, summary)
            seen += 1
        if documents is not None and len(rows) >= size:
            break
    if not rows:
        raise InputError(f"{path}: no usable rows (every document or summary is empty)")
    return InputSample(rows, documents if documents is not None else seen, documents is None, removed, files)


# ---------------------------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class Case:
    """Totals for the whole input under one completion assumption (expected or worst)."""

    prompt_tokens: float  # as sent
    prefill_tokens: float  # prompt tokens the engines compute (prefix cache hits removed)
    completion_tokens: float
    replica_seconds: float
    wall_seconds: float
    gpu_hours: float


@dataclass(frozen=True)
class Plan:
    config: PlanConfig
    sample: InputSample
    per_document: dict[str, float]  # sample means
    cut_fraction: float
    throughput: Throughput
    factors: tuple[Assumption, Assumption]
    tokenizer: str | None
    expected: Case
    worst: Case


def _case(prompt: float, prefill: float, completion: float, rate: Throughput) -> Case:
    replica_seconds = prefill / rate.prefill.value + completion / rate.decode.value
    wall = replica_seconds / rate.replicas
    return Case(prompt, prefill, completion, replica_seconds, wall, wall * rate.gpus / 3600)


def estimate(config: PlanConfig, sample: InputSample, measured: list[DocumentTokens], tokenizer: str | None) -> Plan:
    """Scale the sample's mean tokens per document to the whole input and turn them into time on the cluster."""
    rate = throughput(config)  # at least one replica: PlanConfig refuses a replica larger than a node
    n = len(measured)

    def mean(name: str) -> float:
        return sum(getattr(m, name) for m in measured) / n

    per = {name: mean(name) for name in DocumentTokens.__dataclass_fields__ if name != "cut"}
    reuse = per["shared_prefix"] if config.prefix_caching else 0.0
    docs = sample.documents
    cases = []
    for kind in ("expected", "worst"):
        prompt = per["prompt_a"] + per[f"prompt_b_{kind}"]
        completion = per[f"completion_a_{kind}"] + per[f"completion_b_{kind}"]
        cases.append(_case(docs * prompt, docs * (prompt - reuse), docs * completion, rate))
    cut = sum(m.cut for m in measured) / n
    return Plan(config, sample, per, cut, rate, length_factors(config), tokenizer, cases[0], cases[1])


def plan(config: PlanConfig) -> Plan:
    """Read a sample of the input, count its tokens, and estimate the whole run."""
    from lsr.mining.budget import TokenBudget

    tokenizer = config.tokenizer_path()
    counter = TokenBudget(config.max_model_len, config.mining.rationale_max_tokens,
                          config.mining.summaries_max_tokens, config.tokens_per_word, tokenizer)
    sample = read_sample(config.input, config.sample, seed=config.seed, documents=config.documents)
    measured = [measure_document(d, s, config, counter) for d, s in sample.rows]
    return estimate(config, sample, measured, tokenizer)


# ------------------------------------------------------------------------------------------------- printing


def _duration(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48:
        return f"{hours / 24:.1f} days"
    if hours >= 1:
        return f"{hours:.1f} h"
    return f"{seconds / 60:.1f} min"


def _num(value: float) -> str:
    return f"{value:,.0f}"


def format_plan(p: Plan) -> str:
    c, s, r = p.config, p.sample, p.throughput
    counted = f"counted in {s.files} file(s)" if s.counted else "given by --documents"
    removed = ", ".join(f"{n} {why}" for why, n in sorted(s.removed.items()))
    counting = f"tokenizer {p.tokenizer}" if p.tokenizer else f"word estimate ({c.tokens_per_word} tokens/word)"
    lines = [
        f"input: {c.input}: {s.documents:,} documents ({counted}{'; removed: ' + removed if removed else ''})",
        f"sample: {len(s.rows)} documents (seed {c.seed}); tokens by {counting}; "
        f"{p.cut_fraction:.0%} cut to --max-model-len {c.max_model_len}",
        f"cluster: {c.nodes} node(s) x {c.gpus_per_node} GPUs = {r.gpus} GPUs; "
        f"{r.replicas} replica(s) of {c.mining_model} at tensor-parallel {c.tensor_parallel_size}"
        + (f"; {r.idle_gpus} GPU(s) idle" if r.idle_gpus else ""),
        "",
        "per document (sample mean)          call A    call B (expected / worst)",
        f"  prompt tokens                   {p.per_document['prompt_a']:>8,.0f}    "
        f"{p.per_document['prompt_b_expected']:,.0f} / {p.per_document['prompt_b_worst']:,.0f}",
        f"  completion tokens, expected     {p.per_document['completion_a_expected']:>8,.0f}    "
        f"{p.per_document['completion_b_expected']:,.0f}",
        f"  completion tokens, worst case   {p.per_document['completion_a_worst']:>8,.0f}    "
        f"{p.per_document['completion_b_worst']:,.0f}",
        f"  shared prefix (system + document, prefilled once with prefix caching "
        f"{'on' if c.prefix_caching else 'off'}): {p.per_document['shared_prefix']:,.0f}",
        "",
        f"whole input                     {'expected':>16}  {'worst case':>16}",
    ]
    rows = [
        ("prompt tokens", _num(p.expected.prompt_tokens), _num(p.worst.prompt_tokens)),
        ("prompt tokens prefilled", _num(p.expected.prefill_tokens), _num(p.worst.prefill_tokens)),
        ("completion tokens", _num(p.expected.completion_tokens), _num(p.worst.completion_tokens)),
        ("total tokens", _num(p.expected.prompt_tokens + p.expected.completion_tokens),
         _num(p.worst.prompt_tokens + p.worst.completion_tokens)),
        ("wall time", _duration(p.expected.wall_seconds), _duration(p.worst.wall_seconds)),
        ("GPU-hours", f"{p.expected.gpu_hours:,.1f}", f"{p.worst.gpu_hours:,.1f}"),
    ]
    lines += [f"  {name:<30}{a:>16}  {b:>16}" for name, a, b in rows]
    lines += ["", "assumptions (override with the flag named):"]
    for a in (r.decode, r.prefill, *p.factors):
        lines.append(f"  {a.flag} {a.value:,.2f}  {a.unit}; {a.source}")
    lines.append("  wall time = (prefilled / prefill rate + completion / completion rate) / replicas; "
                 "GPU-hours = wall time x all GPUs of the cluster")
    lines.append("  not included: engine start-up (downloading and loading the model: minutes per replica), "
                 "node start-up, retries; the engines are assumed saturated (enough requests in flight)")
    return "\n".join(lines)
