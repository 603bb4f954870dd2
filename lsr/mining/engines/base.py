"""What every mining engine is: a typed config that knows how to answer the two calls of a document.

An engine is one class (a :class:`Engine` subclass, in a file of its own under :mod:`lsr.mining.engines`) with a
``kind`` literal, its options as pydantic fields (the ``lsr mine`` flags are generated from them), and either

- a local answer (:meth:`Engine.answer`, e.g. the oracle), or
- a chat client that an actor of the mining stage builds once and sends both calls of every document to
  (:class:`LlmEngine`: ``chat_client``), with the stage's resources (``stage_options``).

The job mines every document the same way whatever serves it (:mod:`lsr.mining.document_stage`); it never asks
which engine it holds. Adding an engine is a new file here plus one line in the registry (``__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from lsr.core.config import MiningPreset, StrictModel, describe_error
from lsr.core.errors import InputError
from lsr.mining.budget import ContextOptions, TokenBudget


@dataclass(frozen=True)
class ChatRequest:
    """One chat call: the messages, its completion budget, and (with ``--structured-output``) the JSON schema the
    engine must constrain the reply to."""

    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    schema: dict[str, Any] | None = None


#: ``CallResult.finish_reason`` of a reply the engine cut at ``max_tokens`` (OpenAI's and vLLM's word for it).
CUT_AT_MAX_TOKENS = "length"


@dataclass(frozen=True)
class CallResult:
    """What a call came back with: the text and its token counts, or the error; ``finish_reason`` is ``"stop"``
    for a reply that ended by itself and ``"length"`` for one cut at ``max_tokens`` (``None`` when the engine does
    not say)."""

    text: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None
    finish_reason: str | None = None
    #: Prompt tokens the engine served from its prefix cache (vLLM; ``None`` when the engine does not say).
    cached_prompt_tokens: int | None = None
    #: Requests sent for this call: more than 1 when it was sent again (an HTTP retry, a rebuilt vLLM engine).
    attempts: int = 1

    @property
    def cut_at_max_tokens(self) -> bool:
        return self.finish_reason == CUT_AT_MAX_TOKENS


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
    #: True for an engine answered by :meth:`answer` on CPU workers, False for a chat client in the mining stage.
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
        raise NotImplementedError(f"engine {self.kind!r} answers through its chat client")


class LlmEngine(Engine, ContextOptions):
    """An engine answered by an LLM through a chat client, with the context budget every LLM needs.

    A subclass also has a ``batch_size`` field: the documents of one stage batch (all mined concurrently).
    """

    model: str = Field(min_length=1, description="vllm: model path or id; http: the served model name")

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
            structured=mining.structured_output,
        )

    @property
    def rows_in_flight(self) -> int:
        """Documents in one stage task (one block); an actor runs two tasks at once so that its in-flight budget
        never waits on a block's tail."""
        raise NotImplementedError

    def chat_client(self, on_send: Callable[[], None] | None = None) -> Any:
        """The actor's :class:`~lsr.mining.document_stage.ChatClient`, built in the actor; both calls use it. The
        client calls ``on_send`` once right before every request it sends (each retry, each resend too): the run's
        tally (:mod:`lsr.mining.tally`) counts there the requests that an actor's death would otherwise hide."""
        raise NotImplementedError

    def stage_options(self) -> dict[str, Any]:
        """The stage's ``map_batches`` resources and actor pool (``compute``, ``num_cpus``/``num_gpus``, ...)."""
        raise NotImplementedError
