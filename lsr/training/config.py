"""Every setting of a training run, in one typed place, with the data set's paper defaults filled in."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lsr.config import DatasetPreset, load_preset
from lsr.errors import InputError

ALL_VIEWS = ("ea", "as", "ter")


def parse_views(text: str | None) -> list[str]:
    """``"ea,as,ter"`` -> ``["ea", "as", "ter"]`` in hierarchy order; ``"none"`` or ``""`` -> ``[]`` (baseline).

    Validation and ordering are the model's own (:func:`lsr.model.config.canonical_views`), so the command line
    accepts exactly the views the model does.
    """
    from lsr.model.config import canonical_views

    if text is None:
        return list(ALL_VIEWS)
    items = [v.strip().lower() for v in text.replace(" ", ",").split(",") if v.strip()]
    if items in ([], ["none"]):
        return []
    try:
        return canonical_views(items)
    except InputError as err:
        raise InputError(f"--views {text!r}: {err}; or none for the plain baseline") from None


@dataclass
class TrainSettings:
    """A training run. ``None`` fields take the data set preset's value in :meth:`resolved`."""

    data: str
    output: str
    dataset: str = "cnndm"
    model: str = "tiny"
    views: list[str] = field(default_factory=lambda: list(ALL_VIEWS))
    #: "mwf" (Eq. 11) or "finetune" (plain CE, the baseline); None: mwf with views, finetune without.
    objective: str | None = None
    workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    max_steps: int | None = None
    epochs: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    lr_scale: float | None = None
    warmup_steps: int | None = None
    # Adam with the Noam schedule's usual betas and eps (Vaswani et al. 2017).
    adam_betas: tuple[float, float] = (0.9, 0.98)
    adam_eps: float = 1e-9
    source_max_tokens: int | None = None
    target_max_tokens: int | None = None
    rationale_max_tokens: int = 256
    gate_init: float | None = None
    gamma_ce: float | None = None
    gamma_align: float | None = None
    gates_trainable: bool = True
    hierarchical: bool = True
    freeze_encoder: bool = False
    validation: str | None = None
    validation_size: int = 16
    validation_batch_size: int = 8
    #: Overrides of the data set's generation preset for validation (e.g. fewer beams to save time).
    validation_generation: dict[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    max_failures: int = 1
    log_every: int = 10
    shuffle_buffer: int = 256
    storage_path: str | None = None
    run_name: str = "train"
    seed: int = 0
    resume: bool = False
    find_unused_parameters: bool = False
    config_yaml: str | None = None

    def preset(self) -> DatasetPreset:
        return load_preset(self.dataset, self.config_yaml)

    def resolved(self) -> TrainSettings:
        """A copy with every preset-backed field filled in and the whole run checked."""
        model = self.preset().model
        filled = dataclasses.replace(
            self,
            objective=self.objective or ("mwf" if self.views else "finetune"),
            lr_scale=model.lr_scale if self.lr_scale is None else self.lr_scale,
            warmup_steps=model.warmup_steps if self.warmup_steps is None else self.warmup_steps,
            source_max_tokens=self.source_max_tokens or model.source_max_tokens,
            target_max_tokens=self.target_max_tokens or model.target_max_tokens,
            gate_init=model.gate_init if self.gate_init is None else self.gate_init,
            gamma_ce=model.gamma_ce if self.gamma_ce is None else self.gamma_ce,
            gamma_align=model.gamma_align if self.gamma_align is None else self.gamma_align,
        )
        filled.check()
        return filled

    def check(self) -> None:
        if (self.max_steps is None) == (self.epochs is None):
            raise InputError("give exactly one of --max-steps and --epochs")
        positive = {
            "--max-steps": self.max_steps,
            "--epochs": self.epochs,
            "--workers": self.workers,
            "--batch-size": self.batch_size,
            "--grad-accum": self.grad_accum,
            "--warmup-steps": self.warmup_steps,
            "--checkpoint-every": self.checkpoint_every,
            "--keep-checkpoints": self.keep_checkpoints,
            "--log-every": self.log_every,
            "--validation-size": self.validation_size,
        }
        for flag, value in positive.items():
            if value is not None and value < 1:
                raise InputError(f"{flag} must be at least 1, got {value}")
        if self.objective not in ("mwf", "finetune"):
            raise InputError(f"--objective must be mwf or finetune, got {self.objective!r}")
        if self.objective == "mwf" and not self.views:
            raise InputError("the mwf objective needs at least one view; use --views none with --objective finetune")
        if self.max_failures < 0:
            raise InputError(f"--max-failures must be >= 0, got {self.max_failures}")

    def mwf_fields(self) -> dict[str, Any]:
        """The ``mwf_*`` config fields of the student (the GatedBartConfig contract)."""
        return {
            "mwf_views": list(self.views),
            "mwf_gate_init": self.gate_init,
            "mwf_gates_trainable": self.gates_trainable,
            "mwf_hierarchical": self.hierarchical,
            "mwf_gamma_ce": self.gamma_ce,
            "mwf_gamma_align": self.gamma_align,
            "mwf_freeze_encoder": self.freeze_encoder,
        }

    def generation_kwargs(self) -> dict[str, Any]:
        return {**self.preset().generation.as_generate_kwargs(), **self.validation_generation}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
