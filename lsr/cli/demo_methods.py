"""``lsr demo --method logit-kd|as-es``: the extra stages each method adds to the demo, and its table's rows.

The demo has already mined, selected, and trained the MWF student and the plain fine-tuned baseline; a method adds
its own students, trained through the real commands on the same rows with the same demo-sized settings, and
returns the ``--model`` flags that put them in the one evaluation table:

- ``logit-kd``: a teacher (the plain fine-tuned tiny model, trained twice as many steps, so it knows more than
  the students it teaches; it shares their tokenizer, as KD needs), a logit-KD student taught by it online
  (``--objective logit-kd --teacher``), a sequence-level KD student trained on the mined LLM summaries
  (``--summary-column total_summary``), and the same pair for a decoder-only student (``--model tiny-causal``): a
  causal teacher fine-tuned twice as long and a causal logit-KD student taught by it (KD needs a teacher of the
  student's family).
- ``as-es``: ``lsr segment`` on the selected rows, then the dual students (an ES model and an AS model) and the
  unified one; they are evaluated by writing their chains (``--model NAME=ES_DIR+AS_DIR`` for the dual pair).
  They are trained without the validation pass: its summaries are single ``generate`` calls, not chains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from lsr.data.layout import MODEL_DIR, RUN_SELECTED_DIR, SEGMENTED_DIR

Stage = Callable[[list[str]], None]

#: What each method leaves behind beyond the default demo's files (relative to --output).
ARTIFACTS: dict[str, tuple[tuple[str, str], ...]] = {
    "logit-kd": (
        ("teacher/model/", "the KD teacher (plain fine-tuning, twice the steps)"),
        ("kd/model/", "the logit-KD student (CE + tempered KL to the teacher, online)"),
        ("seqkd/model/", "the sequence-level KD student (trained on the mined LLM summaries)"),
        ("causal-teacher/model/, causal-kd/model/", "a decoder-only (tiny-causal) teacher and its logit-KD student"),
    ),
    "as-es": (
        ("seg/segmented, seg/segment_report.md", "the chains cut into ES/AS segments, and the split's statistics"),
        ("ases-es/model/, ases-as/model/", "the dual AS-ES student: the ES model and the AS model"),
        ("ases-unified/model/", "the unified AS-ES student"),
        ("eval/AS-ES-*/predictions.parquet", "their summaries with the rationale each wrote (column rationale)"),
    ),
}


def train_method(method: str, out: Path, *, common: Sequence[str], model_args: Sequence[str], steps: int,
                 stage: Stage) -> list[str]:
    """Run ``method``'s stages (module docstring); returns the ``lsr evaluate --model`` flags of its models.

    ``common``: the demo's training flags (data, model, steps, validation); ``model_args``: the same without the
    data and the validation."""
    if method == "logit-kd":
        return _logit_kd(out, common, steps, stage)
    if method == "as-es":
        return _as_es(out, model_args, stage)
    raise ValueError(f"unknown demo method {method!r}")


def _logit_kd(out: Path, common: Sequence[str], steps: int, stage: Stage) -> list[str]:
    teacher = out / "teacher" / MODEL_DIR
    stage(["train", "--output", str(out / "teacher"), "--views", "none", *common, "--max-steps", str(2 * steps)])
    stage(["train", "--output", str(out / "kd"), "--views", "none", *common, "--objective", "logit-kd",
           "--teacher", str(teacher)])
    stage(["train", "--output", str(out / "seqkd"), "--views", "none", *common, "--summary-column", "total_summary"])
    # The decoder-only pair: the same flags with --model tiny-causal (a later --model wins).
    causal = [*common, "--model", "tiny-causal"]
    causal_teacher = out / "causal-teacher" / MODEL_DIR
    stage(["train", "--output", str(out / "causal-teacher"), "--views", "none", *causal, "--max-steps", str(2 * steps)])
    stage(["train", "--output", str(out / "causal-kd"), "--views", "none", *causal, "--objective", "logit-kd",
           "--teacher", str(causal_teacher)])
    return ["--model", f"Teacher={teacher}", "--model", f"KD={out / 'kd' / MODEL_DIR}",
            "--model", f"Seq-KD={out / 'seqkd' / MODEL_DIR}", "--model", f"Causal-Teacher={causal_teacher}",
            "--model", f"Causal-KD={out / 'causal-kd' / MODEL_DIR}"]


def _as_es(out: Path, model_args: Sequence[str], stage: Stage) -> list[str]:
    stage(["segment", "--input", str(out / RUN_SELECTED_DIR), "--output", str(out / "seg"), "--overwrite"])
    data = str(out / "seg" / SEGMENTED_DIR)
    for variant, folder in (("dual-es", "ases-es"), ("dual-as", "ases-as"), ("unified", "ases-unified")):
        stage(["train", "--output", str(out / folder), "--data", data, *model_args, "--views", "none",
               "--objective", "as-es", "--ases-variant", variant])
    dual = f"{out / 'ases-es' / MODEL_DIR}+{out / 'ases-as' / MODEL_DIR}"
    return ["--model", f"AS-ES-dual={dual}", "--model", f"AS-ES-unified={out / 'ases-unified' / MODEL_DIR}"]
