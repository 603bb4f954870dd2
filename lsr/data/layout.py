"""The run folder's layout: every file and folder name one stage writes and another reads, written once.

A stage's output folder (local or ``s3://``) holds these names; the run report (:mod:`lsr.report`), the model
cache and the demo read them back, so a name changed here changes everywhere.
"""

from __future__ import annotations

# Mining (``lsr mine --output OUT``): Parquet parts owned through a manifest and a lock; the report beside OUT.
MANIFEST = "_lsr_manifest.json"
LOCK = "_lsr.lock"
MINING_REPORT_SUFFIXES = (".report.json", ".report.md")

# Selection (``lsr select --output OUT``): the two partitions, the report and the score histogram.
KEPT = "kept"
REJECTED = "rejected"
SELECTION_REPORT_JSON = "report.json"
SELECTION_REPORT_MD = "report.md"
SCORES_PNG = "scores.png"

# Training (``lsr train --output OUT``): the exported model, the history, the gate plot and the run's report;
# the checkpoints under the storage path; the alignment targets beside the training data.
MODEL_DIR = "model"
CHECKPOINTS_DIR = "checkpoints"
HISTORY_FILE = "history.jsonl"
GATES_PNG = "gates.png"
TRAIN_REPORT = "train_report.json"
TARGETS_DIR = "targets"

# Evaluation (``lsr evaluate --output OUT``): the table, and every model's summaries under OUT/<name>/.
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
PREDICTIONS_FILE = "predictions.parquet"

# The logit-KD teacher pass (``lsr teacher --output OUT``): the scored rows under OUT/kept/ and its report; while a
# pass runs (or after one was interrupted), Ray Data's job checkpoint and the pass's settings, which --resume reads.
TEACHER_REPORT = "teacher_report.json"
TEACHER_CHECKPOINT = "_teacher_checkpoint"
TEACHER_SETTINGS = "_teacher_pass.json"

# AS-ES segmentation (``lsr segment --output OUT``).
SEGMENTED_DIR = "segmented"
SEGMENT_REPORT_JSON = "segment_report.json"
SEGMENT_REPORT_MD = "segment_report.md"

# The run report (``lsr report RUN``).
REPORT_HTML = "report.html"

# A whole run's folder as ``lsr demo`` lays it out and ``lsr report`` reads it: each stage's output by name.
RUN_DATA_DIR = "data"
RUN_MINED_DIR = "mined"
RUN_SELECTED_DIR = "selected"
RUN_EVAL_DIR = "eval"


def mining_report_paths(output: str) -> tuple[str, str]:
    """Where ``lsr mine --output OUTPUT`` writes its report: ``OUTPUT.report.json`` and ``OUTPUT.report.md``."""
    base = output.rstrip("/")
    json_suffix, md_suffix = MINING_REPORT_SUFFIXES
    return base + json_suffix, base + md_suffix
