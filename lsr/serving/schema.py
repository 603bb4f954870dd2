"""The HTTP contract of ``POST /summarize``: request and response models, their bounds, and one-line errors.

The request body is parsed here (not by FastAPI's implicit body binding) so that every way a body can be wrong
— invalid JSON, a wrong type, an unknown field, an empty text, too many texts, a setting out of bounds — ends
as a :class:`RequestError` whose message names the field and the problem. The bounds come from the server's
:class:`~lsr.serving.config.RequestLimits`, passed as validation context.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from lsr.serving.config import RequestLimits

#: The generation settings a request may override, all bounded by :class:`RequestLimits`.
GENERATION_FIELDS = ("num_beams", "min_new_tokens", "max_new_tokens", "length_penalty")


class RequestError(Exception):
    """A request the client must fix: ``status`` (4xx) and a message that says what is wrong."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class SummarizeRequest(BaseModel):
    """``{"text": "..."}`` or ``{"texts": ["...", ...]}``, optional beam-search settings, and ``explain``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | None = Field(default=None, description="one document")
    texts: list[str] | None = Field(default=None, description="several documents, summarised in one batch")
    num_beams: int | None = Field(default=None, ge=1, description="beam width (server bound: limits.max_num_beams)")
    min_new_tokens: int | None = Field(default=None, ge=0, description="minimum summary length in tokens")
    max_new_tokens: int | None = Field(default=None, ge=1, description="maximum summary length in tokens")
    length_penalty: float | None = Field(default=None, description="beam-search length penalty")
    explain: bool = Field(
        default=False, description="also return the per-layer, per-view gate values (MWF) or the rationale (AS-ES); "
        "422 for a model that has neither (GET /model's 'explains' says which one a model has)"
    )

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> SummarizeRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a string) or 'texts' (a list of strings)")
        documents = self.documents()
        limits: RequestLimits = (info.context or {}).get("limits") or RequestLimits()
        if not documents:
            raise ValueError("'texts' is empty: give at least one document")
        if len(documents) > limits.max_texts:
            raise ValueError(f"{len(documents)} texts in one request; the limit is {limits.max_texts}")
        blank = [i for i, doc in enumerate(documents) if not doc.strip()]
        if blank:
            where = "'text'" if self.text is not None else f"texts[{', '.join(map(str, blank))}]"
            raise ValueError(f"{where} is empty or whitespace only: give a document to summarise")
        _check_bound("num_beams", self.num_beams, 1, limits.max_num_beams)
        _check_bound("max_new_tokens", self.max_new_tokens, 1, limits.max_new_tokens)
        _check_bound("min_new_tokens", self.min_new_tokens, 0, limits.max_new_tokens)
        _check_bound("length_penalty", self.length_penalty, limits.min_length_penalty, limits.max_length_penalty)
        return self

    def documents(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])

    def generation_overrides(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in GENERATION_FIELDS if getattr(self, k) is not None}


def _check_bound(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise ValueError(f"{name} {value} is out of bounds: this server allows {low} to {high}")


class Summary(BaseModel):
    summary: str
    input_tokens: int = Field(description="tokens in the document before truncation")
    truncated: bool = Field(description="the document was cut to source_max_tokens before summarising")
    batch_size: int = Field(description="documents generated together with this one (dynamic batching)")
    rationale: dict[str, Any] | None = Field(
        default=None, description="with explain, from an AS-ES student: its own rationale (aspects, associated "
        "sentences located in the document or flagged ungrounded, triples, sub-summaries, turns)"
    )


class Timings(BaseModel):
    total_ms: float = Field(description="time in the replica, from the request to the answer")
    queue_ms: float = Field(description="longest wait of this request's documents for their batch")
    generate_ms: float = Field(description="longest generate() call among this request's batches")


class SummarizeResponse(BaseModel):
    model: str
    summaries: list[Summary]
    truncated: bool = Field(description="any document was truncated (see each summary)")
    source_max_tokens: int
    generation: dict[str, Any] = Field(description="the beam-search settings used")
    timings: Timings
    gates: dict[str, list[float]] | None = Field(
        default=None, description="with explain: view -> one gate per decoder layer, as fused (Eq. 9-10)"
    )


def parse_request(body: bytes, limits: RequestLimits) -> SummarizeRequest:
    """The validated request, or a :class:`RequestError`: 400 for a body that is not JSON, 422 otherwise."""
    try:
        return SummarizeRequest.model_validate_json(body, context={"limits": limits})
    except ValidationError as err:
        errors = err.errors(include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise RequestError(400, f"invalid JSON: {errors[0]['ctx'].get('error', errors[0]['msg'])}") from None
        raise RequestError(422, describe(errors)) from None


def describe(errors: list[dict[str, Any]]) -> str:
    """Pydantic's errors as one line: ``field: problem; field: problem``."""
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = f"unknown field (known: {', '.join(SummarizeRequest.model_fields)})"
        elif e["type"] == "model_type":
            message = "the body must be a JSON object"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
