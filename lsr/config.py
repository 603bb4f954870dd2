"""The paper's per-data-set settings, in one typed place.

Every stage reads its defaults from :func:`preset` (``cnndm`` or ``xsum``) instead of burying numbers in
code; a YAML file can override any field (:func:`load_preset`), and command-line flags override both.
Where the paper and the authors' code disagree, the field's comment says which one the default follows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsr.errors import InputError

DATASETS = ("cnndm", "xsum")


@dataclass(frozen=True)
class GenerationPreset:
    """Beam-search settings used for evaluation and serving (DESIGN.md §3)."""

    num_beams: int
    length_penalty: float
    min_new_tokens: int
    max_new_tokens: int
    no_repeat_ngram_size: int = 3
    early_stopping: bool = True

    def as_generate_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``transformers``' ``generate()``."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SelectionPreset:
    """Step 2: keep an example when its score (a loss, lower is better) is <= ``threshold``."""

    score: str  # "score1" (CNN/DM) or "score2" (XSum)
    threshold: float
    # Score2's third ROUGE term: the paper prints ROUGE-3, the authors' code uses ROUGE-L (the default).
    third_rouge: str = "rougeL"
    # Which generated text is scored: "sub" (sub-summaries), "total", or "both".
    score_on: str = "sub"


@dataclass(frozen=True)
class MiningPreset:
    """Step 1: bounded outputs at temperature 0."""

    rationale_max_tokens: int
    summaries_max_tokens: int
    temperature: float = 0.0


@dataclass(frozen=True)
class ModelPreset:
    """Step 3: the MWF student's data-set-specific constants."""

    gate_init: float
    gamma_ce: float
    gamma_align: float
    source_max_tokens: int
    target_max_tokens: int
    # Noam schedule: lr = lr_scale * min(step^-0.5, step * warmup^-1.5).
    lr_scale: float = 2e-3
    warmup_steps: int = 10_000


@dataclass(frozen=True)
class DatasetPreset:
    name: str
    mining: MiningPreset
    selection: SelectionPreset
    model: ModelPreset
    generation: GenerationPreset
    extra: dict[str, Any] = field(default_factory=dict)


_PRESETS: dict[str, DatasetPreset] = {
    "cnndm": DatasetPreset(
        name="cnndm",
        mining=MiningPreset(rationale_max_tokens=1024, summaries_max_tokens=512),
        selection=SelectionPreset(score="score1", threshold=0.85, score_on="sub"),
        model=ModelPreset(
            gate_init=0.02, gamma_ce=0.6, gamma_align=0.4, source_max_tokens=1024, target_max_tokens=120
        ),
        generation=GenerationPreset(num_beams=4, length_penalty=2.0, min_new_tokens=56, max_new_tokens=142),
    ),
    "xsum": DatasetPreset(
        name="xsum",
        mining=MiningPreset(rationale_max_tokens=512, summaries_max_tokens=256),
        selection=SelectionPreset(score="score2", threshold=0.65, score_on="total"),
        model=ModelPreset(
            gate_init=0.01, gamma_ce=0.7, gamma_align=0.3, source_max_tokens=512, target_max_tokens=80
        ),
        generation=GenerationPreset(num_beams=8, length_penalty=0.6, min_new_tokens=12, max_new_tokens=64),
    ),
}


def preset(dataset: str) -> DatasetPreset:
    """The paper's defaults for ``dataset`` ("cnndm" or "xsum")."""
    try:
        return _PRESETS[dataset]
    except KeyError:
        raise InputError(f"unknown data set {dataset!r}: choose one of {', '.join(DATASETS)}") from None


def _merge(obj: Any, overrides: dict[str, Any], where: str) -> Any:
    """A copy of dataclass ``obj`` with ``overrides`` applied, recursing into nested dataclasses."""
    known = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in known:
            raise InputError(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = _merge(current, value, f"{where}.{key}")
        else:
            changes[key] = value
    return dataclasses.replace(obj, **changes)


def load_preset(dataset: str, yaml_path: str | Path | None = None) -> DatasetPreset:
    """The preset for ``dataset`` with the fields of a YAML file (nested like the dataclasses) applied."""
    base = preset(dataset)
    if yaml_path is None:
        return base
    import yaml

    path = Path(yaml_path)
    try:
        overrides = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise InputError(f"{path}: cannot read config file ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(overrides, dict):
        raise InputError(f"{path}: a config file must hold a mapping of settings")
    return _merge(base, overrides, str(path))
