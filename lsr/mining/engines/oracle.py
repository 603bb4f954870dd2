"""The ``oracle`` engine: no LLM, the extractive stand-in of :mod:`lsr.mining.oracle`, answered on CPU workers."""

from __future__ import annotations

from typing import ClassVar, Literal

from lsr.mining import oracle
from lsr.mining.engines.base import Engine


class OracleEngine(Engine):
    kind: Literal["oracle"] = "oracle"
    runs_locally: ClassVar[bool] = True

    @property
    def model_name(self) -> str:
        return oracle.MODEL_NAME

    def answer(self, document: str, summary: str, dataset: str) -> tuple[str, str]:
        return oracle.oracle_outputs(document, summary, dataset)
