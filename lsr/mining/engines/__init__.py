"""The registry of mining engines: the one place that lists them (``--engine`` choices, the config's union).

Adding an engine (e.g. SGLang): a file beside these with an :class:`LlmEngine` subclass (its ``kind`` literal, its
fields, ``chat_client``, ``stage_options``, ``rows_in_flight``), and its class in :data:`ENGINES`.

The stage modules this one calls are imported inside the functions that use them: the ``lsr`` command imports this
module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from lsr.mining.engines.base import CallResult, Engine, LlmEngine
from lsr.mining.engines.http import HttpEngine
from lsr.mining.engines.oracle import OracleEngine
from lsr.mining.engines.vllm import VllmEngine

#: Every engine, in the order ``--engine`` lists them.
ENGINES: tuple[type[Engine], ...] = (VllmEngine, HttpEngine, OracleEngine)

#: The config field type of an engine: one of :data:`ENGINES`, picked by its ``kind``.
EngineConfig = Annotated[Union[ENGINES], Field(discriminator="kind")]  # noqa: UP007 (a union built from the tuple)


def kind_of(engine_cls: type[Engine]) -> str:
    return engine_cls.model_fields["kind"].default


def by_kind(kind: str) -> type[Engine]:
    for engine_cls in ENGINES:
        if kind_of(engine_cls) == kind:
            return engine_cls
    raise KeyError(kind)


def check_settings(data: Any) -> None:
    """Refuse, in one line, an option of another engine (``--tensor-parallel-size`` with ``--engine http``)."""
    if not isinstance(data, dict) or "kind" not in data:
        return
    try:
        chosen = by_kind(data["kind"])
    except KeyError:
        return  # pydantic names the unknown kind
    for key in data:
        if key in chosen.model_fields:
            continue
        owners = [kind_of(e) for e in ENGINES if key in e.model_fields]
        if owners:
            raise ValueError(
                f"{_flag(key)} is an option of --engine {' or '.join(owners)}, not of --engine {data['kind']}"
            )


def _flag(field: str) -> str:
    from lsr.core.cli_config import Flag

    for engine_cls in ENGINES:
        info = engine_cls.model_fields.get(field)
        if info is not None:
            named = next((m.name for m in info.metadata if isinstance(m, Flag) and m.name), None)
            if named:
                return named
    return "--" + field.replace("_", "-")


__all__ = [
    "ENGINES",
    "CallResult",
    "Engine",
    "EngineConfig",
    "HttpEngine",
    "LlmEngine",
    "OracleEngine",
    "VllmEngine",
    "by_kind",
    "check_settings",
]
