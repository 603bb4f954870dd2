"""``lsr train``'s one typed config: every option of a training run, written once.

Flags, the ``--config`` YAML (sections ``model`` and ``generation``) and validation all come from
:class:`TrainConfig` (:mod:`lsr.core.cli_config`, :func:`lsr.core.config.resolve`), so a wrong key or type is refused
with its name before Ray starts. The same object travels to the Ray Train workers (a pydantic model pickles).

Where a value comes from: the data set's paper values fill the ``model`` section (gate init, Eq. 11 weights,
truncation, Noam) and the ``generation`` section (validation's beam search); the YAML file overrides them; the
flags override both. The objective's own parameters default to the ``model`` section's values (the MWF weights
are the paper's per-data-set gammas); ``--objective`` defaults to ``mwf`` with views and ``finetune`` without.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from lsr.core.cli_config import Flag
from lsr.core.config import Dataset, GenerationPreset, ModelPreset, StageConfig, validate
from lsr.core.errors import InputError
from lsr.data.layout import CHECKPOINTS_DIR
from lsr.model.views import VIEWS, canonical_views, parse_views
from lsr.training.objectives import ObjectiveConfig, objective_class
from lsr.training.targets import TargetOptions


class TrainConfig(TargetOptions, StageConfig):
    """A training run (paper Step 3): data, student, objective, Ray Train resources, checkpoints, validation."""

    data: str = Field(description="the selection output (its kept/ folder is used) or Parquet files with rationale "
                      "columns")
    output: str = Field(description="folder for model/, history.jsonl, gates.png, train_report.json and checkpoints/")
    dataset: Dataset = Field(description="picks the paper's defaults")
    checkpoint: Annotated[str, Flag(name="--model", metavar="tiny|tiny-causal|PATH")] = Field(
        default="tiny", description="'tiny' (random init, shipped tokenizer), 'tiny-causal' (its decoder-only "
        "twin), a BART / MWF checkpoint folder or a causal LM folder (finetune and logit-kd only, --views none)"
    )
    views: Annotated[list[str], Flag(parse=parse_views, metavar="ea,as,ter|none")] = Field(
        default=list(VIEWS),
        description="rationale views of the student, any of ea,as,ter; 'none' trains the plain baseline",
    )
    objective: ObjectiveConfig | None = Field(
        default=None,
        description="loss: mwf (Eq. 11), finetune (CE only) or logit-kd (CE + tempered KL to a teacher); default mwf "
        "with views, finetune without",
    )
    summary_column: Literal["summary", "total_summary"] = Field(
        default="summary",
        description="the target: the gold summary, or the LLM's mined total_summary (sequence-level KD)",
    )
    workers: int = Field(default=2, ge=1, description="data-parallel training workers")
    use_gpu: Annotated[bool, Flag(name="--gpu")] = Field(
        default=False, description="one GPU per worker (NCCL, bf16 autocast)"
    )
    accelerator_type: str | None = Field(
        default=None,
        description="with --gpu: only GPUs of this Ray accelerator type (e.g. A10G, H100), so that training lands on "
        "its own node type of cluster.yaml and not on idle mining nodes",
    )
    cpus_per_worker: Annotated[float, Flag(cli=False)] = Field(default=1.0, gt=0.0)
    max_steps: int | None = Field(default=None, ge=1, description="optimizer steps to train for")
    epochs: int | None = Field(default=None, ge=1, description="passes over the training data")
    resume: bool = Field(default=False, description="continue the run in --output from its last checkpoint")
    batch_size: int = Field(default=8, ge=1, description="examples per worker per micro-batch")
    grad_accum: int = Field(default=1, ge=1, description="micro-batches per optimizer step")
    max_grad_norm: float = Field(default=1.0, gt=0.0, description="gradient clipping norm")
    # Adam with the Noam schedule's usual betas and eps (Vaswani et al. 2017).
    adam_betas: Annotated[tuple[float, float], Flag(cli=False)] = (0.9, 0.98)
    adam_eps: Annotated[float, Flag(cli=False)] = 1e-9
    freeze_gates: bool = Field(default=False, description="keep the gates at --gate-init (Table 4)")
    flat: bool = Field(default=False, description="modules attend to the encoder, not to each other")
    freeze_encoder: bool = Field(default=False, description="freeze the BART encoder (authors' code)")
    recompute_modules: bool = Field(
        default=False,
        description="recompute the MWF rationale modules' activations in the backward pass: less training memory, "
        "one more forward of the modules per step (bench/bench_model.py measures both)",
    )
    validation: str | None = Field(
        default=None,
        description="unfiltered documents (jsonl/parquet/csv) for validation ROUGE at each checkpoint; without it "
        "checkpoints are ranked by training loss",
    )
    validation_size: int = Field(default=16, ge=1, description="validation documents used")
    validation_batch_size: Annotated[int, Flag(cli=False)] = Field(default=8, ge=1)
    validation_generation: Annotated[dict[str, Any], Flag(name="--val-generation", metavar="JSON")] = Field(
        default={}, description="JSON overrides of the generation preset for validation, e.g. '{\"num_beams\": 2}'"
    )
    checkpoint_every: int = Field(default=100, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(default=2, ge=1, description="best checkpoints kept (plus the latest)")
    max_failures: int = Field(default=1, ge=0, description="worker-group restarts after a failure")
    log_every: int = Field(default=10, ge=1, description="steps between progress lines")
    shuffle_buffer: Annotated[int, Flag(cli=False)] = Field(default=256, ge=0)
    storage_path: str | None = Field(
        default=None, description="checkpoint storage, local or s3:// (default: OUTPUT/checkpoints)"
    )
    run_name: str = Field(default="train", description="the run's name inside the storage path")
    seed: int = Field(default=0, description="seeds the model's initialisation and the shuffling")
    find_unused_parameters: bool = Field(default=False, description="DDP option, for exotic models")
    model: ModelPreset
    # Validation's beam search: the data set's preset and the YAML; on the command line only --val-generation.
    generation: Annotated[GenerationPreset, Flag(cli=False)]

    @model_validator(mode="before")
    @classmethod
    def _default_objective(cls, data: Any) -> Any:
        """Pick the objective from the views when not given, and fill its parameters from the ``model`` section."""
        if not isinstance(data, dict):
            return data
        objective = dict(data.get("objective") or {})
        objective.setdefault("kind", "mwf" if data.get("views", list(VIEWS)) else "finetune")
        chosen = objective_class(str(objective["kind"]))
        if chosen is not None:
            objective = {**chosen.defaults_from_model_section(data.get("model") or {}), **objective}
        return {**data, "objective": objective}

    @field_validator("views")
    @classmethod
    def _canonical_views(cls, views: list[str]) -> list[str]:
        try:
            return canonical_views(views)
        except InputError as err:
            raise ValueError(str(err)) from None

    @model_validator(mode="after")
    def _check_run(self) -> TrainConfig:
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of --max-steps and --epochs")
        if self.checkpoint.startswith("s3://"):
            raise ValueError(
                f"--model {self.checkpoint}: training starts from a local folder or a Hugging Face name, not from "
                "object storage (yet); copy the model first (aws s3 sync URI ./model), or continue an S3 run with "
                "--storage-path s3://... --resume"
            )
        if self.accelerator_type and not self.use_gpu:
            raise ValueError(f"--accelerator-type {self.accelerator_type} chooses the GPUs of the workers; add --gpu")
        self.objective.check_views(self.views)
        validate(GenerationPreset, self.generation_kwargs(), where="--val-generation")
        return self

    # ---- derived values ------------------------------------------------------------------------------------

    def mwf_fields(self) -> dict[str, Any]:
        """The ``mwf_*`` config fields of the student (the GatedBartConfig contract)."""
        return {
            "mwf_views": list(self.views),
            "mwf_gate_init": self.model.gate_init,
            "mwf_gates_trainable": not self.freeze_gates,
            "mwf_hierarchical": not self.flat,
            "mwf_freeze_encoder": self.freeze_encoder,
        }

    def generation_kwargs(self) -> dict[str, Any]:
        """Validation's ``generate()`` arguments: the generation section with ``--val-generation`` on top."""
        return {**self.generation.as_generate_kwargs(), **self.validation_generation}

    def storage(self) -> str:
        """Where Ray Train keeps checkpoints: ``--storage-path`` (local or s3://) or ``OUTPUT/checkpoints``."""
        from lsr.core.storage import is_remote, join

        if self.storage_path:
            return self.storage_path if is_remote(self.storage_path) else str(Path(self.storage_path).resolve())
        if is_remote(self.output):
            return join(self.output, CHECKPOINTS_DIR)
        return str((Path(self.output) / CHECKPOINTS_DIR).resolve())
