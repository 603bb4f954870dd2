"""Typed configuration: the paper's per-data-set defaults in one place, and one strict model per stage.

Every option of a stage is declared once, as a field of that stage's pydantic model (``StageConfig``
subclass). :mod:`lsr.core.cli_config` generates the stage's command-line flags from the model, and
:func:`resolve` layers, from weakest to strongest:

1. the field defaults of the stage model,
2. the paper's values for the chosen data set (:data:`PAPER_DEFAULTS`, sections ``mining``, ``selection``,
   ``model``, ``generation``),
3. a YAML file (``--config``) holding any of those sections, nested as here, e.g. ``selection: {threshold: 0.8}``,
4. the flags the user typed.

Validation is strict (pydantic's strict mode, run in JSON mode so YAML's lists are accepted as tuples): YAML's
``yes`` is not a number, ``"100"`` is not an integer, and an unknown key is refused. Every refusal is one
:class:`~lsr.core.errors.InputError` line naming the key (and the flag or file it came from).

Where the paper and the authors' code disagree, the field's description says which one the default follows.

``yaml`` are imported inside the functions that use them: the ``lsr`` command imports this module at start-up,
before it knows which of them a command needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from lsr.core.errors import InputError

DATASETS = ("cnndm", "xsum")
Dataset = Literal["cnndm", "xsum"]


class StrictModel(BaseModel):
    """The base of every config: unknown keys and silent type coercions are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True)


# ------------------------------------------------------------------------------------ the data-set sections


class GenerationPreset(StrictModel):
    """Beam-search settings used for evaluation, validation and serving (docs/paper.md#generation)."""

    num_beams: int = Field(ge=1, description="beams of the beam search")
    length_penalty: float = Field(description="exponent of the length normalisation (>1 favours long outputs)")
    min_new_tokens: int = Field(ge=0, description="shortest summary, in tokens")
    max_new_tokens: int = Field(ge=1, description="longest summary, in tokens")
    no_repeat_ngram_size: int = Field(default=3, ge=0, description="no n-gram of this size is generated twice")
    early_stopping: bool = Field(default=True, description="stop a beam search when num_beams hypotheses ended")

    def as_generate_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``transformers``' ``generate()``."""
        return self.model_dump()


class SelectionPreset(StrictModel):
    """Step 2: keep an example when its score (a loss, lower is better) is <= ``threshold``."""

    score: Literal["score1", "score2"] = Field(description="Score1 (CNN/DM) or Score2 (XSum), Eq. 7-8")
    threshold: float = Field(description="keep rows with score <= this (a fraction in [0, 1])")
    third_rouge: Literal["rougeL", "rouge3"] = Field(
        default="rougeL",
        description="Score2's third term: rougeL as in the authors' code, rouge3 as the paper prints",
    )
    score_on: Literal["sub", "total", "both"] = Field(
        default="sub",
        description="which generated text is scored: sub-summaries, the total summary, or both (the worse counts)",
    )

    @field_validator("threshold")
    @classmethod
    def _a_fraction(cls, value: float) -> float:
        # The bounds of Field(ge=0, le=1), with a hint: the authors' code compares percentages, so 85 is likely.
        if value > 1.0:
            raise PydanticCustomError(
                "less_than_equal", "Input should be less than or equal to 1: scores are fractions (0.85, not 85)"
            )
        if value < 0.0:
            raise PydanticCustomError("greater_than_equal", "Input should be greater than or equal to 0")
        return value


class MiningPreset(StrictModel):
    """Step 1: bounded outputs at temperature 0."""

    rationale_max_tokens: int = Field(ge=1, description="completion budget of call A (the rationale)")
    summaries_max_tokens: int = Field(ge=1, description="completion budget of call B (the summaries)")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="sampling temperature (the paper: 0)")
    structured_output: bool = Field(
        default=False,
        description="vllm and http engines: ask for JSON and have the engine hold each reply to a bounded JSON "
        "schema (the paper's free-text format otherwise)",
    )
    json_chars_per_token: float = Field(
        default=3.0, gt=0, description="--structured-output: characters per token assumed when the schema's string "
        "lengths are derived from the calls' max tokens (smaller: shorter strings)",
    )


class ModelPreset(StrictModel):
    """Step 3: the MWF student's data-set-specific constants."""

    gate_init: float = Field(ge=0.0, le=1.0, description="initial value of every weak gate (Eq. 9-10)")
    gamma_ce: float = Field(ge=0.0, description="Eq. 11 weight of the cross-entropy")
    gamma_align: float = Field(ge=0.0, description="Eq. 11 weight of the alignment losses")
    source_max_tokens: int = Field(ge=1, description="document truncation, in tokens")
    target_max_tokens: int = Field(ge=1, description="summary truncation, in tokens")
    lr_scale: float = Field(default=2e-3, gt=0.0, description="Noam scale: lr = scale * min(s^-0.5, s * w^-1.5)")
    warmup_steps: int = Field(default=10_000, ge=1, description="Noam warm-up steps w")


class DatasetPreset(StrictModel):
    """Everything the paper fixes per data set; what ``--config FILE.yaml`` may override."""

    name: Dataset
    mining: MiningPreset
    selection: SelectionPreset
    model: ModelPreset
    generation: GenerationPreset


#: The paper's numbers (docs/paper.md#hyperparameters), the only place they are written.
PAPER_DEFAULTS: dict[str, dict[str, Any]] = {
    "cnndm": {
        "name": "cnndm",
        "mining": {"rationale_max_tokens": 1024, "summaries_max_tokens": 512},
        "selection": {"score": "score1", "threshold": 0.85, "score_on": "sub"},
        "model": {
            "gate_init": 0.02,
            "gamma_ce": 0.6,
            "gamma_align": 0.4,
            "source_max_tokens": 1024,
            "target_max_tokens": 120,
        },
        "generation": {"num_beams": 4, "length_penalty": 2.0, "min_new_tokens": 56, "max_new_tokens": 142},
    },
    "xsum": {
        "name": "xsum",
        "mining": {"rationale_max_tokens": 512, "summaries_max_tokens": 256},
        "selection": {"score": "score2", "threshold": 0.65, "score_on": "total"},
        "model": {
            "gate_init": 0.01,
            "gamma_ce": 0.7,
            "gamma_align": 0.3,
            "source_max_tokens": 512,
            "target_max_tokens": 80,
        },
        "generation": {"num_beams": 8, "length_penalty": 0.6, "min_new_tokens": 12, "max_new_tokens": 64},
    },
}

#: The sections of :class:`DatasetPreset` a YAML file and a stage may hold.
SECTIONS = ("mining", "selection", "model", "generation")


def _check_dataset(dataset: str) -> None:
    if dataset not in PAPER_DEFAULTS:
        raise InputError(f"unknown data set {dataset!r}: choose one of {', '.join(DATASETS)}")


def preset(dataset: str) -> DatasetPreset:
    """The paper's defaults for ``dataset`` ("cnndm" or "xsum")."""
    _check_dataset(dataset)
    return validate(DatasetPreset, PAPER_DEFAULTS[dataset], where="paper defaults")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a mapping, or one clear error."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise InputError(f"{path}: cannot read config file ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config file must hold a mapping of settings")
    return data


def preset_dict(dataset: str, overrides: dict[str, Any] | None = None, where: str = "") -> dict[str, Any]:
    """The paper's defaults for ``dataset`` with a YAML file's sections (``overrides``, read from ``where``) merged
    in, as a plain (checked) dict."""
    _check_dataset(dataset)
    data = json.loads(json.dumps(PAPER_DEFAULTS[dataset]))
    if overrides is not None:
        if "name" in overrides:
            raise InputError(f"{where}: unknown setting 'name' (the data set is chosen by --dataset)")
        deep_merge(data, overrides)
        validate(DatasetPreset, data, where=where)
    return data


def load_preset(dataset: str, yaml_path: str | Path | None = None) -> DatasetPreset:
    """The preset for ``dataset`` with the fields of a YAML file (nested like :class:`DatasetPreset`) applied."""
    overrides = read_yaml(yaml_path) if yaml_path is not None else None
    return validate(DatasetPreset, preset_dict(dataset, overrides, str(yaml_path)),
                    where=str(yaml_path or "paper defaults"))


# ------------------------------------------------------------------------------------------------ stages


class StageConfig(StrictModel):
    """The base of a stage's config. A subclass declares its options as fields, and may embed any of the
    :data:`SECTIONS` as fields of the same name and type: those are filled from the data set's preset and the
    YAML file before the flags apply (:func:`resolve`)."""

    ray_address: str | None = Field(
        default=None, description="a Ray cluster to join (default: RAY_ADDRESS, else a new local Ray)"
    )
    #: Stage fields a YAML file may set inside a data-set section: ``{"mining.engine": "engine"}`` lets
    #: ``mining: {engine: {dtype: float32}}`` set the engine's fields (under the flags, over the defaults).
    yaml_fields: ClassVar[dict[str, str]] = {}

    @classmethod
    def preset_sections(cls) -> list[str]:
        """The data-set sections this stage embeds."""
        return [name for name in SECTIONS if name in cls.model_fields]


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` into ``base`` in place (nested mappings merge, anything else replaces)."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def resolve(
    config_cls: type[StageConfig],
    given: dict[str, Any],
    *,
    yaml_path: str | Path | None = None,
    flag_names: dict[str, str] | None = None,
) -> StageConfig:
    """The stage config from the user's ``given`` values (nested, e.g. ``{"selection": {"threshold": 0.8}}``),
    layered over the data set's preset and ``yaml_path``; ``flag_names`` maps a dotted key to the flag it came
    from, so an error names what the user typed."""
    data: dict[str, Any] = {}
    sections = config_cls.preset_sections()
    if sections:
        dataset = given.get("dataset")
        if dataset is None:
            raise InputError("--dataset is required (it picks the paper's defaults)")
        overrides = read_yaml(yaml_path) if yaml_path is not None else None
        stage_values = _take_stage_fields(overrides, config_cls.yaml_fields)
        defaults = preset_dict(dataset, overrides, str(yaml_path))
        data = {name: defaults[name] for name in sections}
        deep_merge(data, stage_values)
    elif yaml_path is not None:
        raise InputError(f"--config {yaml_path}: this stage takes no data-set settings")
    deep_merge(data, given)
    return validate(config_cls, data, where="", flag_names=flag_names or {})


def _take_stage_fields(overrides: dict[str, Any] | None, yaml_fields: dict[str, str]) -> dict[str, Any]:
    """Remove from ``overrides`` the stage fields a section holds (:attr:`StageConfig.yaml_fields`); them, by field."""
    taken: dict[str, Any] = {}
    for path, field in yaml_fields.items():
        section, _, key = path.partition(".")
        holder = (overrides or {}).get(section)
        if isinstance(holder, dict) and key in holder:
            taken[field] = holder.pop(key)
    return taken


def validate(
    model_cls: type[BaseModel], data: dict[str, Any], *, where: str, flag_names: dict[str, str] | None = None
) -> Any:
    """``model_cls`` built from ``data`` in strict JSON mode, or one :class:`InputError` naming the key."""
    try:
        return model_cls.model_validate_json(json.dumps(data, default=str))
    except ValidationError as err:
        raise InputError(describe_error(err, model_cls, where, flag_names)) from None


def describe_error(
    err: ValidationError, model_cls: type[BaseModel], where: str, flag_names: dict[str, str] | None = None
) -> str:
    """The first problem of ``err`` as one line: ``where: key: what is wrong (got value)``."""
    problem = err.errors(include_url=False)[0]
    loc = [str(part) for part in problem["loc"]]
    key = ".".join(loc)
    if problem["type"] == "extra_forbidden":
        message = f"unknown setting {loc[-1]!r}"
        known = _known_keys(model_cls, loc[:-1])
        if known:
            message += f" (known: {', '.join(known)})"
    elif problem["type"] == "value_error" and not loc:
        # A rule across fields (a model validator): its own sentence says what to change.
        message = str(problem["ctx"]["error"]) if "error" in problem.get("ctx", {}) else problem["msg"]
        return f"{where}: {message}" if where else message
    elif problem["type"] == "value_error":  # a field validator's own sentence, which names what it checked
        message = str(problem["ctx"]["error"])
    else:
        message = f"{problem['msg'][0].lower()}{problem['msg'][1:]}"
        if problem["type"] != "missing":
            message += f" (got {problem['input']!r})"
    name = (flag_names or {}).get(key)
    if name is None and len(loc) >= 3:  # inside a discriminated union the member's tag is part of the location
        name = (flag_names or {}).get(".".join([loc[0], *loc[2:]]))
    subject = f"{name} ({key})" if name else key
    line = f"{subject}: {message}" if subject else message
    return f"{where}: {line}" if where else line


def _known_keys(model_cls: type[BaseModel], parents: list[str]) -> list[str]:
    """The keys accepted under ``parents`` (a path of nested-model fields), for an unknown-key message."""
    model: Any = model_cls
    for part in parents:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)
