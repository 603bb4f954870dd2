"""The serving stage's typed configuration: one strict pydantic model read by the CLI, the YAML and the builder.

``lsr serve`` flags, the ``args:`` of a Serve config YAML (``serve deploy``) and ``build_app`` all validate
through :class:`ServeConfig`, so a wrong key or type is refused with its name before a replica starts.
Generation defaults are not repeated here: they come from the data set's preset (:func:`lsr.core.config.preset`)
and this config only holds overrides of them, plus the bounds a request may ask for.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lsr.core.cli_config import Flag
from lsr.core.errors import InputError

#: The environment variable that, when set and non-empty, turns bearer-token auth on (its name is configurable).
DEFAULT_TOKEN_ENV = "LSR_SERVE_TOKEN"
#: The model deployment's name (the YAML's ``deployments:`` entries refer to it).
DEPLOYMENT_NAME = "Summarizer"
#: The HTTP ingress deployment's name: auth, validation, the page, /healthz, and the retry of a lost request.
INGRESS_NAME = "SummarizerIngress"
#: The custom resource every Ray head node has: a tiny amount of it pins the ingress to the head.
HEAD_RESOURCE = "node:__internal_head__"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class GenerationOverrides(_Strict):
    """Server-wide replacements of the preset's beam-search settings (``None`` keeps the preset's value)."""

    num_beams: int | None = Field(default=None, ge=1, description="override the preset's beams")
    min_new_tokens: int | None = Field(default=None, ge=0, description="override the preset's minimum length")
    max_new_tokens: int | None = Field(default=None, ge=1, description="override the preset's maximum length")
    length_penalty: float | None = Field(default=None, description="override the preset's length penalty")

    def as_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class RequestLimits(_Strict):
    """What one request may ask for; anything beyond is refused with a 4xx that names the bound."""

    max_texts: int = Field(default=16, ge=1, description="documents per request")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="size of a request body")
    max_num_beams: int = Field(default=8, ge=1)
    max_new_tokens: int = Field(default=256, ge=1)
    min_length_penalty: float = -2.0
    max_length_penalty: float = 4.0

    @model_validator(mode="after")
    def _ordered(self) -> RequestLimits:
        if self.min_length_penalty > self.max_length_penalty:
            raise ValueError("limits: min_length_penalty must not exceed max_length_penalty")
        return self


class Batching(_Strict):
    """``@serve.batch`` across concurrent requests: one document is one batch item; 1 turns batching off."""

    max_batch_size: int = Field(default=16, ge=1, description="documents per batch (1: no batching; default 16)")
    batch_wait_timeout_s: Annotated[float, Flag(name="--batch-wait-s", metavar="SECONDS")] = Field(
        default=0.02, ge=0.0, le=10.0, description="longest wait for a batch to fill, in seconds (default 0.02)"
    )


class Autoscaling(_Strict):
    """Serve's autoscaling: replicas follow the ongoing requests per replica between the two bounds."""

    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=2, ge=1)
    target_ongoing_requests: float = Field(default=16.0, gt=0.0)
    #: Serve's own defaults: scale up after 30 s above the target, down after 10 minutes below it.
    upscale_delay_s: float = Field(default=30.0, ge=0.0)
    downscale_delay_s: float = Field(default=600.0, ge=0.0)
    #: The window the ongoing requests are averaged over (Serve's default).
    look_back_period_s: float = Field(default=30.0, gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"autoscaling: min_replicas {self.min_replicas} exceeds max_replicas {self.max_replicas}")
        return self


def autoscale_bounds(spec: str) -> dict[str, int]:
    """``--autoscale MIN,MAX``: the two replica bounds of :class:`Autoscaling` (its other settings: YAML)."""
    low, sep, high = spec.partition(",")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise InputError(f"{spec!r}: give MIN,MAX replicas, e.g. 1,4")
    return {"min_replicas": int(low), "max_replicas": int(high)}


class ServeConfig(_Strict):
    """Everything a summarisation replica and its deployment need (the secret token itself is never part of it)."""

    model: Annotated[str, Flag(metavar="DIR")] = Field(
        min_length=1, description="checkpoint folder (save_pretrained format), e.g. RUN/model"
    )
    dataset: Literal["cnndm", "xsum"] | None = Field(
        default=None, description="generation preset; default: the dataset of the run's train_report.json"
    )
    model_id: str | None = Field(default=None, description="name in answers; default: the run's folder name")
    source_max_tokens: int | None = Field(default=None, ge=1, description="document truncation; default: preset")
    generation: GenerationOverrides = GenerationOverrides()
    limits: Annotated[RequestLimits, Flag(cli=False)] = RequestLimits()
    batching: Batching = Batching()
    replicas: Annotated[int | None, Flag(metavar="N")] = Field(
        default=None, ge=1, description="a fixed number of replicas (default 1)"
    )
    autoscaling: Annotated[Autoscaling | None, Flag(name="--autoscale", parse=autoscale_bounds, metavar="MIN,MAX")] = (
        Field(default=None, description="autoscale between MIN and MAX replicas")
    )
    gpu: bool = Field(default=False, description="one GPU per replica (one replica per GPU on a cluster)")
    num_cpus: float = Field(default=1.0, gt=0.0, description="CPU cores per replica (also its torch threads)")
    max_ongoing_requests: int = Field(default=64, ge=1, description="requests a replica holds at once")
    auth_token_env: Annotated[str, Flag(name="--token-env", metavar="VAR")] = Field(
        default=DEFAULT_TOKEN_ENV, min_length=1,
        description="environment variable whose token turns bearer auth on",
    )
    graceful_shutdown_timeout_s: Annotated[float, Flag(cli=False)] = Field(
        default=30.0, ge=0.0, description="drain time for in-flight requests"
    )
    graceful_shutdown_wait_loop_s: Annotated[float, Flag(cli=False)] = Field(default=2.0, ge=0.0)
    health_check_period_s: Annotated[float, Flag(cli=False)] = Field(default=10.0, gt=0.0)
    replica_wait_s: Annotated[float, Flag(cli=False)] = Field(
        default=30.0, gt=0.0,
        description="longest a request waits for a model replica to take it (both tries); then 503",
    )
    retry_after_s: Annotated[int, Flag(cli=False)] = Field(
        default=5, ge=1, description="the Retry-After of a 503 answered while no model replica is available"
    )
    ingress_on_head: Annotated[bool, Flag(cli=False)] = Field(
        default=True, description="pin the HTTP ingress to the Ray head node (it survives a worker's loss)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ServeConfig:
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError("give either replicas or autoscaling, not both")
        g, lim = self.generation, self.limits
        if g.num_beams is not None and g.num_beams > lim.max_num_beams:
            raise ValueError(f"generation.num_beams {g.num_beams} exceeds limits.max_num_beams {lim.max_num_beams}")
        if g.max_new_tokens is not None and g.max_new_tokens > lim.max_new_tokens:
            raise ValueError(
                f"generation.max_new_tokens {g.max_new_tokens} exceeds limits.max_new_tokens {lim.max_new_tokens}"
            )
        return self

    def deployment_options(self) -> dict[str, Any]:
        """Keyword arguments of ``Deployment.options``: replicas or autoscaling, resources, shutdown, health."""
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": 1 if self.gpu else 0},
            "max_ongoing_requests": self.max_ongoing_requests,
            "graceful_shutdown_timeout_s": self.graceful_shutdown_timeout_s,
            "graceful_shutdown_wait_loop_s": self.graceful_shutdown_wait_loop_s,
            "health_check_period_s": self.health_check_period_s,
        }
        if self.autoscaling is not None:
            options["autoscaling_config"] = self.autoscaling.model_dump()
        else:
            options["num_replicas"] = self.replicas or 1
        return options

    def ingress_options(self) -> dict[str, Any]:
        """``Deployment.options`` of the HTTP ingress: one light replica (no cores), on the head node if asked.

        It holds every request while a model replica works on it, so it may hold as many as all model replicas
        together, and it drains a little longer than they do."""
        most = self.autoscaling.max_replicas if self.autoscaling is not None else (self.replicas or 1)
        actor: dict[str, Any] = {"num_cpus": 0}
        if self.ingress_on_head:
            actor["resources"] = {HEAD_RESOURCE: 0.001}
        return {
            "name": INGRESS_NAME,
            "num_replicas": 1,
            "ray_actor_options": actor,
            "max_ongoing_requests": max(1000, 2 * most * self.max_ongoing_requests),
            "graceful_shutdown_timeout_s": self.graceful_shutdown_timeout_s + 10.0,
            "graceful_shutdown_wait_loop_s": self.graceful_shutdown_wait_loop_s,
            "health_check_period_s": self.health_check_period_s,
        }
