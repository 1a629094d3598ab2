"""In-process use with litellm.Router (the seed tutorial's path): the caller wraps the call in
its own span, and the plugin's spans carry the cost under it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from litellm_cost_otel import CostOtelLogger
from litellm_cost_otel import attributes as a
from litellm_cost_otel.devtools.gateway import PROVIDER_KEY
from litellm_cost_otel.devtools.traces import request_traces
from litellm_cost_otel.settings import Settings

MODEL_LIST = [
    {"model_name": "fast", "litellm_params": {"model": "mistral/mistral-small-latest", "api_key": PROVIDER_KEY,
                                              "mock_response": "Hello from fast."}},
    {"model_name": "fast-outage", "litellm_params": {"model": "mistral/mistral-small-latest",
                                                     "api_key": PROVIDER_KEY,
                                                     "mock_response": "litellm.RateLimitError"}},
    {"model_name": "capable", "litellm_params": {"model": "mistral/mistral-large-latest", "api_key": PROVIDER_KEY,
                                                 "mock_response": "Hello from capable."}},
]


@pytest.fixture(scope="module")
def plugin(receiver: Any) -> Iterator[CostOtelLogger]:
    # One instance for the module: litellm copies callbacks into its internal lists on first
    # use and keeps them, as an application would.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        patch.setenv("OTEL_SERVICE_NAME", "in-process-app")
        patch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        logger = CostOtelLogger(settings=Settings(request_timeout_s=3.0))
    litellm.callbacks = [logger]
    yield logger
    litellm.callbacks = []
    logger.tracer_provider.shutdown()


@pytest.fixture
def caller_tracer(receiver: Any) -> Iterator[trace.Tracer]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True)))
    yield provider.get_tracer("caller-app")
    provider.shutdown()


def router() -> litellm.Router:
    return litellm.Router(model_list=MODEL_LIST, fallbacks=[{"fast-outage": ["capable"]}], num_retries=1,
                          retry_after=0)


def ours_under(receiver: Any, parent_span_id: str, plugin: CostOtelLogger, attempts: int) -> Any:
    plugin.force_flush()
    spans = receiver.wait_for(lambda spans: any(
        t.request.parent_span_id == parent_span_id and len(t.attempts) == attempts
        for t in request_traces(spans)))
    found = [t for t in request_traces(spans) if t.request.parent_span_id == parent_span_id]
    assert len(found) == 1
    return found[0]


def test_async_router_with_fallback_under_the_callers_span(plugin: CostOtelLogger, caller_tracer: trace.Tracer,
                                                           receiver: Any) -> None:
    async def call() -> tuple[Any, Any]:
        with caller_tracer.start_as_current_span("router.completion/fast-outage") as span:
            response = await router().acompletion(model="fast-outage", messages=[{"role": "user", "content": "hi"}])
        await asyncio.sleep(0.5)  # the success event runs in a background task
        return response, span.get_span_context()

    response, caller = asyncio.run(call())
    found = ours_under(receiver, format(caller.span_id, "016x"), plugin, attempts=3)
    assert found.request.trace_id == format(caller.trace_id, "032x")
    assert found.request.kind == "INTERNAL"
    cost = response._hidden_params["response_cost"]
    prompt_cost, completion_cost = litellm.cost_per_token(model="mistral/mistral-large-latest", prompt_tokens=10,
                                                          completion_tokens=20)
    assert cost == pytest.approx(prompt_cost + completion_cost, rel=1e-9)
    assert found.request.attributes[a.COST_USD] == pytest.approx(cost, rel=1e-9)
    assert found.request.attributes[a.SERVED_MODEL_GROUP] == "capable"
    assert found.request.attributes[a.FALLBACKS] == 1
    assert [s.attributes.get(a.ERROR_TYPE) for s in found.attempts] == ["RateLimitError", "RateLimitError", None]
    assert found.attempts[-1].attributes[a.GEN_AI_USAGE_INPUT_TOKENS] == 10
    assert found.request.resource["service.name"] == "in-process-app"


def test_concurrent_async_calls_each_under_their_own_callers_span(plugin: CostOtelLogger,
                                                                 caller_tracer: trace.Tracer, receiver: Any) -> None:
    """The hooks' events are read later, in a batch the first request's hook scheduled (and
    runs in that request's context): each request keeps the caller's span its own hooks saw."""
    shared = router()

    async def one(name: str) -> Any:
        with caller_tracer.start_as_current_span(name) as span:
            await shared.acompletion(model="fast", messages=[{"role": "user", "content": "hi"}])
        return span.get_span_context()

    async def both() -> list[Any]:
        callers = await asyncio.gather(one("caller/first"), one("caller/second"))
        await asyncio.sleep(0.5)  # the success events run in background tasks
        return callers

    for caller in asyncio.run(both()):
        found = ours_under(receiver, format(caller.span_id, "016x"), plugin, attempts=1)
        assert found.request.trace_id == format(caller.trace_id, "032x")


def test_sync_router_completion_under_the_callers_span(plugin: CostOtelLogger, caller_tracer: trace.Tracer,
                                                       receiver: Any) -> None:
    with caller_tracer.start_as_current_span("router.completion/fast") as span:
        response = router().completion(model="fast", messages=[{"role": "user", "content": "hi"}])
    caller = span.get_span_context()
    time.sleep(0.5)  # sync success callbacks may run on a worker thread
    found = ours_under(receiver, format(caller.span_id, "016x"), plugin, attempts=1)
    assert found.request.attributes[a.COST_USD] == pytest.approx(response._hidden_params["response_cost"], rel=1e-9)
    assert found.request.attributes[a.COST_USD] > 0
    assert found.attempts[0].attributes[a.GEN_AI_USAGE_OUTPUT_TOKENS] == 20


def test_in_process_final_failure_ends_after_the_request_timeout(plugin: CostOtelLogger,
                                                                 caller_tracer: trace.Tracer,
                                                                 receiver: Any) -> None:
    """litellm.Router raises to the caller with no final hook; the request still ends, as failed."""
    outage_only = litellm.Router(model_list=MODEL_LIST[1:2], num_retries=1, retry_after=0)

    async def call() -> Any:
        with caller_tracer.start_as_current_span("router.completion/outage") as span:
            with pytest.raises(litellm.RateLimitError):
                await outage_only.acompletion(model="fast-outage", messages=[{"role": "user", "content": "hi"}])
        await asyncio.sleep(3.5)  # past the 3 s request timeout
        await router().acompletion(model="fast", messages=[{"role": "user", "content": "sweep"}])
        await asyncio.sleep(0.5)
        return span.get_span_context()

    caller = asyncio.run(call())
    found = ours_under(receiver, format(caller.span_id, "016x"), plugin, attempts=2)
    assert found.request.status == "ERROR"
    assert found.request.attributes[a.ERROR_TYPE] == "RateLimitError"
    assert plugin.inflight_requests == 0
