"""Which checkpoints are AS-ES students, so ``lsr evaluate`` and ``lsr serve`` generate chains for them.

A run trained with ``--objective as-es`` says so in its ``train_report.json`` (one level above ``model/``):
``config.objective.kind == "as-es"`` and ``config.objective.ases_variant``. A unified student is one folder; a
dual student is two, written ``ES_DIR+AS_DIR`` (the ES model first). A half of a dual student given alone is
refused: it writes only one turn type, so it cannot produce a chain by itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsr.core.errors import InputError
from lsr.core.model_cache import local_checkpoint
from lsr.data.layout import TRAIN_REPORT

#: Joins a dual student's ES and AS checkpoint folders in one ``--model`` value.
DUAL_SEPARATOR = "+"


@dataclass(frozen=True)
class AsEsStudent:
    """An AS-ES student's checkpoints: ``as_model`` is None for the unified variant."""

    es_model: str
    as_model: str | None = None

    @property
    def variant(self) -> str:
        return "unified" if self.as_model is None else "dual"

    @property
    def paths(self) -> list[str]:
        return [self.es_model] if self.as_model is None else [self.es_model, self.as_model]


def trained_variant(model_dir: str) -> str | None:
    """The ``ases_variant`` the run of ``model_dir`` trained, or None (not AS-ES, or no training report)."""

    path = Path(local_checkpoint(model_dir)).resolve().parent / TRAIN_REPORT  # an s3:// run's report is cached too
    if not path.is_file():
        return None
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: unreadable training report ({err})") from None
    objective = ((report.get("config") or {}).get("objective")) or {}
    if objective.get("kind") != "as-es":
        return None
    return str(objective.get("ases_variant") or "unified")


def as_es_student(spec: str) -> AsEsStudent | None:
    """The AS-ES student ``spec`` names (``DIR`` or ``ES_DIR+AS_DIR``), or None for an ordinary summarizer."""
    if DUAL_SEPARATOR in spec and not os.path.exists(spec):
        es_dir, _, as_dir = spec.partition(DUAL_SEPARATOR)
        if not es_dir or not as_dir or DUAL_SEPARATOR in as_dir:
            raise InputError(f"--model {spec}: a dual AS-ES student is ES_DIR+AS_DIR (two folders)")
        for path, wanted in ((es_dir, "dual-es"), (as_dir, "dual-as")):
            found = trained_variant(path)
            if found is not None and found != wanted:
                raise InputError(f"--model {spec}: {path} was trained as {found}; a dual student is ES_DIR+AS_DIR "
                                 "with the dual-es model first and the dual-as model second")
        return AsEsStudent(es_dir, as_dir)
    variant = trained_variant(spec)
    if variant is None:
        return None
    if variant == "unified":
        return AsEsStudent(spec)
    raise InputError(f"--model {spec}: the {variant} half of a dual AS-ES student writes one turn type only; "
                     f"give both halves as ES_DIR{DUAL_SEPARATOR}AS_DIR")
