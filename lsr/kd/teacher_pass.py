"""The offline teacher pass: a teacher too big to sit beside the student scores every training example once.

Ray Data batch inference (one teacher per actor, the ``map_batches`` + actor-pool pattern): each actor loads the
teacher once, runs it teacher-forced on the gold summary (the run's ``--summary-column``) of a batch of rows, and
keeps, per summary token, the top-k token ids and their log-probabilities (T = 1; the training run applies its own
temperature, see :mod:`lsr.kd.kd_loss`). The rows are written back with three more columns
(:mod:`lsr.model.topk_columns`) under ``OUTPUT/kept/``, so ``lsr train --objective logit-kd --data OUTPUT``
reads them like a selection output; ``OUTPUT/teacher_report.json`` says how much each example costs to store.

The documents and summaries are tokenised exactly as training tokenises them (the same tokenizer, truncation and
data-set lengths; for a causal teacher and student, ``prompt + summary`` with the prompt's labels at -100), and the
scored ids are stored, so a training run that would read other tokens refuses. ``--engine vllm`` scores a
decoder-only teacher on vLLM replicas instead (``ray.data.llm``, prompt log-probs, GPU or CPU:
:mod:`lsr.kd.vllm_teacher`) and writes the same columns.

``pyarrow`` and the lsr modules that need them are imported inside the functions that use them: the ``lsr`` command
imports this module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.fs as pafs
import torch
from pydantic import Field, model_validator

from lsr.core.cli_config import Flag
from lsr.core.config import Dataset, ModelPreset, StageConfig
from lsr.core.errors import InputError
from lsr.core.storage import filesystem, fresh_folder, join, write_text
from lsr.data.layout import KEPT, TEACHER_REPORT
from lsr.kd.vllm_teacher import VllmTeacherOptions
from lsr.model.topk_columns import IDS, LABELS, LOGPROBS


class TeacherPassConfig(StageConfig):
    """``lsr teacher``: score the training set with a KD teacher once and store its top-k per summary token."""

    data: str = Field(description="the selection output (its kept/ folder is used) or Parquet training rows")
    output: str = Field(description="folder for kept/ (the rows with the teacher's top-k) and teacher_report.json")
    dataset: Dataset = Field(description="picks the paper's truncation lengths (the training run's)")
    teacher: str = Field(description="teacher checkpoint folder (save_pretrained format; seq2seq for a BART student, "
                         "causal LM for a causal one)")
    student: Annotated[str, Flag(metavar="tiny|tiny-causal|PATH")] = Field(
        default="tiny", description="the student the top-k is for: its tokenizer and family must be the teacher's"
    )
    top_k: int = Field(default=20, ge=1, description="token ids and log-probs kept per summary position")
    summary_column: Literal["summary", "total_summary"] = Field(
        default="summary", description="the target the teacher scores (the training run's --summary-column)"
    )
    batch_size: int = Field(default=16, ge=1, description="rows per teacher forward pass")
    actors: int = Field(default=1, ge=1, description="teacher replicas (one model per Ray actor)")
    engine: Literal["transformers", "vllm"] = Field(
        default="transformers", description="transformers: the teacher in PyTorch on each actor (seq2seq or causal); "
        "vllm: a decoder-only teacher on vLLM replicas through ray.data.llm (prompt log-probs; GPU or CPU)")
    use_gpu: Annotated[bool, Flag(name="--gpu")] = Field(
        default=False, description="transformers engine: one GPU per teacher actor (vllm: --device)")
    vllm: VllmTeacherOptions = Field(default_factory=VllmTeacherOptions)
    overwrite: bool = Field(default=False, description="replace the kept/ of an earlier pass")
    resume: bool = Field(default=False, description="continue the interrupted pass in --output with the same settings: "
                         "the rows Ray Data's job checkpoint records as written are kept, the others scored (needs "
                         "two CPUs beside the teacher actors)")
    rows_per_file: int = Field(default=256, ge=1, description="rows per output file: the unit a resumed pass redoes")
    model: ModelPreset

    @model_validator(mode="after")
    def _resume_or_overwrite(self) -> TeacherPassConfig:
        if self.resume and self.overwrite:
            raise ValueError("--resume continues the pass in --output and --overwrite replaces it: choose one")
        return self

    @model_validator(mode="after")
    def _options_of_the_chosen_engine(self) -> TeacherPassConfig:
        if self.engine == "transformers" and self.vllm.model_fields_set:
            names = ", ".join(sorted("--" + n.replace("_", "-") for n in self.vllm.model_fields_set))
            raise ValueError(f"{names}: options of --engine vllm, not of --engine transformers")
        if self.engine == "vllm" and self.use_gpu:
            raise ValueError("--gpu is an option of --engine transformers; vLLM replicas take --device gpu|cpu")
        return self


def score_topk(
    model: torch.nn.Module,
    tokenizer: Any,
    documents: Sequence[str],
    summaries: Sequence[str],
    *,
    k: int,
    source_max_tokens: int,
    target_max_tokens: int,
    device: torch.device | str = "cpu",
    causal: bool = False,
) -> dict[str, list[list[Any]]]:
    """Per row: the labels the run will train on, and the flat ``[position, rank]`` top-k ids and log-probs of the
    teacher at every summary position (all labels of a seq2seq row; the summary after a ``causal`` row's prompt)."""
    from lsr.kd.teacher import teacher_forced
    from lsr.model.batching import LABEL_PAD, pad_batch, tokenize_rows

    # Tokenised exactly as training tokenises; the stored labels let a training run check it.
    ids = tokenize_rows({"document": list(documents), "summary": list(summaries)}, tokenizer,
                        source_max_tokens=source_max_tokens, target_max_tokens=target_max_tokens, causal=causal)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batch = {name: value.to(device) for name, value in pad_batch(ids, pad).items()}
    with torch.inference_mode():
        logits, aligned = teacher_forced(model, batch)  # logits[:, t] predicts aligned[:, t]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
    if k > logprobs.size(-1):
        raise InputError(f"--top-k {k} exceeds the teacher's vocabulary of {logprobs.size(-1)} tokens")
    top = logprobs.topk(k, dim=-1)
    scored = aligned != LABEL_PAD
    out: dict[str, list[list[Any]]] = {LABELS: [], IDS: [], LOGPROBS: []}
    for row, labels in enumerate(ids["labels"]):
        out[LABELS].append(list(labels))
        out[IDS].append(top.indices[row][scored[row]].reshape(-1).tolist())
        out[LOGPROBS].append(top.values[row][scored[row]].reshape(-1).tolist())
    return out


TEACHER_FIELDS = (
    pa.field(LABELS, pa.list_(pa.int32())),
    pa.field(IDS, pa.list_(pa.int32())),
    pa.field(LOGPROBS, pa.list_(pa.float32())),
)


class TeacherScorer:
    """One Ray Data actor: the teacher loaded once, then :func:`score_topk` per batch of rows."""

    def __init__(self, config: TeacherPassConfig):
        from lsr.kd.teacher import load_teacher, load_teacher_tokenizer

        self.config = config
        self.device = torch.device("cuda" if config.use_gpu else "cpu")
        self.model = load_teacher(config.teacher, self.device)
        self.tokenizer = load_teacher_tokenizer(config.teacher)
        self.causal = not self.model.config.is_encoder_decoder

    def __call__(self, batch: pa.Table) -> pa.Table:
        config = self.config
        scored = score_topk(
            self.model, self.tokenizer, batch.column("document").to_pylist(),
            batch.column(config.summary_column).to_pylist(), k=config.top_k,
            source_max_tokens=config.model.source_max_tokens, target_max_tokens=config.model.target_max_tokens,
            device=self.device, causal=self.causal,
        )
        for field in TEACHER_FIELDS:
            batch = batch.append_column(field, pa.array(scored[field.name], field.type))
        return batch


def check_teacher_family(teacher: str, student: str) -> None:
    """The teacher scores the layout the student trains on (document -> summary, or prompt + summary), so both must
    be of one family: seq2seq (BART) or causal LM."""
    from lsr.kd.teacher import teacher_family
    from lsr.model.loading import student_family

    have, want = teacher_family(teacher), student_family(student)
    if have != want:
        raise InputError(f"teacher {teacher!r} is a {have} model and the student {student!r} a {want} one; the "
                         "offline pass needs a teacher of the student's family (seq2seq or causal LM)")


def _transformers_scores(rows, config: TeacherPassConfig):
    """The rows with the teacher columns, from the teacher in PyTorch (one per actor)."""
    return rows.map_batches(
        TeacherScorer,
        fn_constructor_kwargs={"config": config},
        batch_size=config.batch_size,
        batch_format="pyarrow",
        concurrency=config.actors,
        num_gpus=1 if config.use_gpu else 0,
    )


def _tokenize_for_teacher(batch: pa.Table, student: str, summary_column: str, source_max_tokens: int,
                          target_max_tokens: int) -> pa.Table:
    """``input_ids``/``labels`` of each row exactly as the causal student trains on them."""
    from lsr.model.batching import tokenize_rows
    from lsr.model.loading import load_tokenizer

    ids = tokenize_rows({"document": batch.column("document").to_pylist(),
                         summary_column: batch.column(summary_column).to_pylist()}, load_tokenizer(student),
                        source_max_tokens=source_max_tokens, target_max_tokens=target_max_tokens,
                        summary_column=summary_column, causal=True)
    return (batch.append_column("input_ids", pa.array(ids["input_ids"], pa.list_(pa.int32())))
            .append_column("labels", pa.array(ids["labels"], pa.list_(pa.int32()))))


def _vllm_scores(rows, config: TeacherPassConfig):
    """The rows with the teacher columns, from vLLM's prompt log-probs (``ray.data.llm``, one engine per replica)."""
    from lsr.kd.vllm_teacher import build_teacher_processor

    tokenized = rows.map_batches(
        _tokenize_for_teacher, batch_format="pyarrow",
        fn_kwargs={"student": config.student, "summary_column": config.summary_column,
                   "source_max_tokens": config.model.source_max_tokens,
                   "target_max_tokens": config.model.target_max_tokens})
    processor = build_teacher_processor(config.vllm, config.teacher, top_k=config.top_k, replicas=config.actors,
                                        batch_size=config.batch_size, device=config.vllm.resolved_device())
    return processor(tokenized)


def check_vllm_teacher(config: TeacherPassConfig) -> None:
    """vLLM scores decoder-only teachers here (a seq2seq teacher's log-probs need its decoder, teacher-forced)."""
    from lsr.kd.teacher import teacher_family

    if config.engine == "vllm" and teacher_family(config.teacher) != "causal":
        raise InputError(f"--engine vllm scores decoder-only teachers; {config.teacher!r} is a seq2seq model "
                         "(use --engine transformers)")


#: The settings a resumed pass must share with the pass it continues (the rows written so far depend on them).
PASS_SETTINGS = ("data", "dataset", "teacher", "student", "top_k", "summary_column", "engine", "model")


def run_teacher_pass(config: TeacherPassConfig) -> dict[str, Any]:
    """Score every row once (Ray Data, one teacher per actor or replica), write ``kept/`` and the report; the
    report. The write is checkpointed by Ray Data (:mod:`lsr.data.checkpointed_write`), so ``--resume`` continues
    an interrupted pass."""
    from lsr.core.ray_utils import init_ray
    from lsr.data.checkpointed_write import check_spare_cpus, write_checkpointed
    from lsr.data.io import read_parquet_dir
    from lsr.data.training_rows import drop_failed_rows, training_dir
    from lsr.kd.teacher import check_same_tokenizer
    from lsr.model.loading import load_tokenizer

    check_same_tokenizer(config.teacher, load_tokenizer(config.student))  # before Ray: one line, no actors
    check_teacher_family(config.teacher, config.student)
    check_vllm_teacher(config)
    kept, checkpoint, resumed = open_pass_output(config)
    init_ray(address=config.ray_address)
    if config.resume:
        check_spare_cpus(config.actors, "--resume")
    rows = read_parquet_dir(training_dir(config.data), ["id", "document", config.summary_column])
    rows = rows.map_batches(drop_failed_rows, batch_format="pyarrow")
    ids = rows.select_columns(["id"]).to_pandas()["id"].tolist()  # what the written rows are checked against
    schema = rows.schema().base_schema
    schema = pa.schema([*(f for f in schema if f.name not in {f.name for f in TEACHER_FIELDS}), *TEACHER_FIELDS])
    score = _vllm_scores if config.engine == "vllm" else _transformers_scores
    blocks = rows.repartition(target_num_rows_per_block=config.rows_per_file)  # a block: one file, one checkpoint
    write_checkpointed(score(blocks, config), kept, schema, checkpoint)
    files, tokens = _check_written(kept, ids)
    _finish_pass(config)
    return _write_report(config, kept, files, len(ids), tokens, resumed)


def open_pass_output(config: TeacherPassConfig) -> tuple[str, str, int]:
    """``kept/``, the checkpoint folder and how many rows an interrupted pass left written (0 on a fresh pass).
    A fresh pass refuses an interrupted one's output unless told to continue it or to replace it; a resumed one
    refuses other settings than the interrupted pass's."""
    from lsr.core.storage import exists, read_text
    from lsr.data.checkpointed_write import committed_ids, remove_checkpoint
    from lsr.data.layout import TEACHER_CHECKPOINT, TEACHER_SETTINGS

    kept, checkpoint = join(config.output, KEPT), join(config.output, TEACHER_CHECKPOINT)
    settings_path, settings = join(config.output, TEACHER_SETTINGS), _pass_settings(config)
    interrupted = exists(settings_path)
    if config.resume:
        if not interrupted:
            raise InputError(f"--resume: {config.output} holds no interrupted teacher pass (a pass that finished "
                             "leaves teacher_report.json and nothing to resume); run without --resume")
        earlier = json.loads(read_text(settings_path))
        changed = sorted(k for k in PASS_SETTINGS if earlier.get(k) != settings.get(k))
        if changed:
            raise InputError(f"--resume: the interrupted pass in {config.output} ran with other settings "
                             f"({', '.join(changed)}); rerun it with its own, or pass --overwrite to start over")
        return kept, checkpoint, committed_ids(checkpoint)
    if interrupted and not config.overwrite:
        raise InputError(f"{config.output}: holds an interrupted teacher pass ({committed_ids(checkpoint)} rows "
                         "written); pass --resume to continue it, or --overwrite to start over")
    kept = fresh_folder(config.output, KEPT, config.overwrite)
    remove_checkpoint(checkpoint)
    write_text(settings_path, json.dumps(settings, indent=2) + "\n")
    return kept, checkpoint, 0


def _pass_settings(config: TeacherPassConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", include=set(PASS_SETTINGS))


def _finish_pass(config: TeacherPassConfig) -> None:
    """The pass is whole: nothing is left to resume (Ray Data removed its checkpoint on success)."""
    from lsr.data.layout import TEACHER_SETTINGS

    fs, inner = filesystem(join(config.output, TEACHER_SETTINGS))
    fs.delete_file(inner)


def _check_written(kept: str, expected: list[str]) -> tuple[list[str], int]:
    """The written files and their summary tokens, the ids checked against the input: every id as often as it came
    (a resumed pass that dropped or repeated a row is an error, not a smaller training set)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    fs, inner = filesystem(kept)
    files = sorted(f.path for f in fs.get_file_info(pafs.FileSelector(inner)) if f.type == pafs.FileType.File)
    table = pq.read_table(files, columns=["id", LABELS], filesystem=fs) if files else None
    written = Counter(table.column("id").to_pylist() if table is not None else [])
    wanted = Counter(expected)
    if written != wanted:
        missing, extra = sum((wanted - written).values()), sum((written - wanted).values())
        raise RuntimeError(f"{kept}: the teacher pass wrote {sum(written.values())} rows for {len(expected)} input "
                           f"rows ({missing} missing, {extra} more than once); run it again with --overwrite")
    tokens = int(pc.sum(pc.list_value_length(table.column(LABELS))).as_py() or 0) if table is not None else 0
    return files, tokens


def _write_report(config: TeacherPassConfig, kept: str, files: list[str], examples: int, tokens: int,
                  resumed: int) -> dict[str, Any]:
    report = {
        "teacher": config.teacher,
        "engine": config.engine,
        "top_k": config.top_k,
        "summary_column": config.summary_column,
        "examples": examples,
        "resumed_rows": resumed,
        "summary_tokens": tokens,
        "bytes_per_example_raw": (tokens * config.top_k * 8 + tokens * 4) / max(examples, 1),
        "bytes_per_example_parquet": _teacher_bytes(filesystem(kept)[0], files) / max(examples, 1),
        "output": kept,
    }
    write_text(join(config.output, TEACHER_REPORT), json.dumps(report, indent=2) + "\n")
    return report


def _teacher_bytes(fs: pafs.FileSystem, files: list[str]) -> int:
    """Compressed bytes of the teacher columns alone in the written files (the documents are not KD's cost)."""
    import pyarrow.parquet as pq

    names = {field.name for field in TEACHER_FIELDS}
    total = 0
    for path in files:
        with fs.open_input_file(path) as handle:
            meta = pq.ParquetFile(handle).metadata
        for group in range(meta.num_row_groups):
            for column in range(meta.num_columns):
                chunk = meta.row_group(group).column(column)
                if chunk.path_in_schema.split(".", 1)[0] in names:
                    total += chunk.total_compressed_size
    return total


def summary_line(report: dict[str, Any]) -> str:
    return (
        f"{report['output']}: {report['examples']} examples scored by the teacher"
        + (f" ({report['resumed_rows']} of them by the interrupted pass)" if report.get("resumed_rows") else "")
        + f", top-{report['top_k']} over "
        f"{report['summary_tokens']} summary tokens; storage per example {report['bytes_per_example_raw'] / 1024:.1f} "
        f"KiB raw, {report['bytes_per_example_parquet'] / 1024:.1f} KiB compressed in Parquet"
    )
