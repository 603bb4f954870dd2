"""What every mining engine is: a typed config that knows how to answer the two calls of a document.

An engine is one class (a :class:`Engine` subclass, in a file of its own under :mod:`lsr.mining.engines`) with a
``kind`` literal, its options as pydantic fields (the ``lsr mine`` flags are generated from them), and either

- a local answer (:meth:`Engine.answer`, e.g. the oracle), or
- a ``ray.data.llm`` processor config plus how a call becomes that processor's request and how its reply
  becomes a :class:`CallResult` (:class:`LlmEngine`: ``processor_config``, ``request``, ``reply``).

The job chains call A and call B the same way whatever serves them (:func:`build_call_processor`); it never asks
which engine it holds. Adding an engine is a new file here plus one line in the registry (``__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from lsr.config import MiningPreset, StrictModel, describe_error
from lsr.errors import InputError
from lsr.mining.budget import TokenBudget

#: Set by a preprocess on rows that must not be sent (call A already failed): every ray.data.llm stage
#: passes rows with a non-empty ``__inference_error__`` through untouched, and the postprocess is skipped.
SKIP_MARK = "lsr-skip: "
ERROR_COLUMN = "__inference_error__"


@dataclass(frozen=True)
class CallResult:
    text: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None


class _OneLineErrors(type(StrictModel)):  # pydantic's model metaclass
    """``SomeEngine(...)`` in code raises one :class:`InputError` line instead of pydantic's report.

    A metaclass rather than ``__init__``: pydantic calls a custom ``__init__`` when it validates an engine nested
    in :class:`~lsr.mining.config.MineConfig` too, which would hide the flag names from the stage's error.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as err:
            raise InputError(describe_error(err, cls, "")) from None


class Engine(StrictModel, metaclass=_OneLineErrors):
    """The base of every engine config."""

    kind: str
    #: True for an engine answered by :meth:`answer` on CPU workers, False for a ``ray.data.llm`` processor.
    runs_locally: ClassVar[bool] = False

    @property
    def model_name(self) -> str:
        """What the rows' ``model`` column and the run's manifest record."""
        raise NotImplementedError

    def secrets(self) -> tuple[str, ...]:
        """Values to mask wherever an error text is stored or printed (an API key)."""
        return ()

    def budget(self, mining: MiningPreset) -> TokenBudget | None:
        """How documents are cut to fit the context; None sends them whole."""
        return None

    def answer(self, document: str, summary: str, dataset: str) -> tuple[str, str]:
        """A local engine's raw (call A, call B) texts for one document."""
        raise NotImplementedError(f"engine {self.kind!r} answers through a ray.data.llm processor")


class LlmEngine(Engine):
    """An engine served by a ``ray.data.llm`` processor, with the context budget every LLM needs."""

    model: str = Field(min_length=1, description="vllm: model path or id; http: the served model name")
    max_model_len: int = Field(default=8192, ge=256, description="context length; longer documents are cut")
    tokenizer: str | None = Field(default=None, description="local tokenizer path for counting tokens (default: words)")
    tokens_per_word: float = Field(default=1.4, gt=0, description="token estimate without a tokenizer")

    @property
    def model_name(self) -> str:
        return self.model

    def budget(self, mining: MiningPreset) -> TokenBudget:
        return TokenBudget(
            max_model_len=self.max_model_len,
            rationale_max_tokens=mining.rationale_max_tokens,
            summaries_max_tokens=mining.summaries_max_tokens,
            tokens_per_word=self.tokens_per_word,
            tokenizer=self.tokenizer,
        )

    def processor_config(self) -> Any:
        """The ``ray.data.llm`` processor config of one call."""
        raise NotImplementedError

    def request(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> dict[str, Any]:
        """The processor's input fields for one call."""
        raise NotImplementedError

    def reply(self, data: dict[str, Any]) -> CallResult:
        """The processor's output row as a :class:`CallResult`."""
        raise NotImplementedError


def build_call_processor(
    engine: LlmEngine,
    make_request: Callable[[dict[str, Any]], tuple[list[dict], int, float] | None],
    read_reply: Callable[[dict[str, Any], CallResult], dict[str, Any]],
):
    """A ``ray.data.llm`` processor for one of the two calls.

    ``make_request(row)`` returns the call's messages, max tokens and temperature, or ``None`` to skip the
    row (it passes through as an error row); ``read_reply(row, result)`` returns the row with the call's
    outputs added.
    """
    from ray.data.llm import build_processor

    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        spec = make_request(row)
        if spec is None:
            return {ERROR_COLUMN: SKIP_MARK + "call not made"}
        messages, max_tokens, temperature = spec
        return {**engine.request(messages, max_tokens, temperature), ERROR_COLUMN: ""}

    def postprocess(data: dict[str, Any]) -> dict[str, Any]:
        return read_reply(data, engine.reply(data))

    return build_processor(engine.processor_config(), preprocess=preprocess, postprocess=postprocess)
