"""The ingress's call to a model replica, without Ray: a call lost with its replica is retried once on another,
an error of the model is not retried, and no replica within the deadline (or Serve refusing the call) is
:class:`ModelUnavailable`, which the routes answer with 503 and ``Retry-After``."""

from __future__ import annotations

import asyncio

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.serve._private.common import DeploymentID
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from lsr.serving.app import ModelUnavailable, call_model, replica_lost


class FakeResponse:
    """A ``DeploymentResponse``: assigned to a replica at once (or never), then a result or an error."""

    def __init__(self, outcome, assigned: bool = True):
        self.outcome, self.assigned, self.cancelled = outcome, assigned, False

    async def _fetch_future_result_async(self):
        if not self.assigned:
            await asyncio.sleep(3600)

    def cancel(self) -> None:
        self.cancelled = True

    def __await__(self):
        async def result():
            if isinstance(self.outcome, BaseException):
                raise self.outcome
            return self.outcome

        return result().__await__()


class FakeHandle:
    """``handle.summarize.remote(...)`` answers the next of ``responses``."""

    def __init__(self, *responses: FakeResponse):
        self.responses, self.calls = list(responses), []

    def __getattr__(self, method: str):
        handle = self

        class Method:
            def remote(self, *args):
                handle.calls.append((method, args))
                return handle.responses.pop(0)

        return Method()


def run(handle: FakeHandle, wait_s: float = 5.0):
    return asyncio.run(call_model(handle, "summarize", ("doc",), wait_s))


def test_a_call_lost_with_its_replica_is_retried_once_on_another():
    for lost in (ActorDiedError(), ActorUnavailableError("unreachable", b"a" * 16)):
        handle = FakeHandle(FakeResponse(lost), FakeResponse({"summaries": []}))
        assert run(handle) == {"summaries": []}
        assert handle.calls == [("summarize", ("doc",))] * 2


def test_a_call_lost_twice_is_unavailable_not_retried_again():
    handle = FakeHandle(FakeResponse(ActorDiedError()), FakeResponse(ActorDiedError()), FakeResponse("never"))
    with pytest.raises(ModelUnavailable, match="lost, twice"):
        run(handle)
    assert len(handle.calls) == 2


def test_an_error_of_the_model_is_raised_as_it_is_and_not_retried():
    handle = FakeHandle(FakeResponse(ValueError("bad tensor")), FakeResponse("never"))
    with pytest.raises(ValueError, match="bad tensor"):
        run(handle)
    assert len(handle.calls) == 1 and not replica_lost(ValueError())


def test_no_replica_taking_the_call_within_the_deadline_is_unavailable_and_the_call_cancelled():
    waiting = FakeResponse("never", assigned=False)
    with pytest.raises(ModelUnavailable, match="within"):
        run(FakeHandle(waiting), wait_s=0.2)
    assert waiting.cancelled


def test_serve_refusing_the_call_is_unavailable_at_once():
    refusals = (DeploymentUnavailableError(DeploymentID(name="Summarizer", app_name="lsr")),
                BackPressureError(num_queued_requests=3, max_queued_requests=2))  # fmt: skip
    for refusal in refusals:
        handle = FakeHandle(FakeResponse(refusal), FakeResponse("never"))
        with pytest.raises(ModelUnavailable):
            run(handle)
        assert len(handle.calls) == 1
