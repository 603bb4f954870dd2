"""``lsr select``'s options, written once: flags, ``--config`` YAML and validation all come from :class:`SelectConfig`.

The rule itself (score, threshold, third ROUGE, scored text) is the data set's ``selection`` section,
:class:`lsr.core.config.SelectionPreset`: the paper's values, then the YAML file, then the flags.
"""

from __future__ import annotations

from pydantic import Field

from lsr.core.config import Dataset, SelectionPreset, StageConfig, resolve


class SelectConfig(StageConfig):
    """``lsr select``: every option of Step 2, written once (flags, YAML and validation come from here)."""

    input: str = Field(description="the mining stage's Parquet output (folder, local or s3://)")
    output: str = Field(description="folder for kept/, rejected/, report.json, report.md, scores.png (local or s3://)")
    dataset: Dataset = Field(description="picks the paper's rule: Score1 <= 0.85 (cnndm) or Score2 <= 0.65 (xsum)")
    selection: SelectionPreset
    force: bool = Field(default=False, description="filter even if the input looks like a test/validation/dev split")
    overwrite: bool = Field(default=False, description="replace kept/ and rejected/ of an earlier run")


def rule_for(dataset: str, *, threshold: float | None = None, score_on: str | None = None,
             third_rouge: str | None = None, config: str | None = None) -> SelectionPreset:
    """The paper's rule for ``dataset`` (optionally from a YAML preset), with overrides applied."""
    overrides = {"threshold": threshold, "score_on": score_on, "third_rouge": third_rouge}
    given = {"dataset": dataset, "input": "-", "output": "-",
             "selection": {k: v for k, v in overrides.items() if v is not None}}
    return resolve(SelectConfig, given, yaml_path=config).selection
