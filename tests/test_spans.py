"""The direct span path exports exactly what the SDK's live spans export: the same requests
emitted through `Tracer.start_span`/`end` and as finished ReadableSpans handed to the
processors encode to the same OTLP bytes (names, kinds, ids, parents, flags, trace state,
times, status, attributes, resource, scope), with the SDK's samplers deciding in both."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from litellm_cost_otel import __version__
from litellm_cost_otel import attributes as attributes_module
from litellm_cost_otel.encoding import EncodedSpan, SpanEncoder
from litellm_cost_otel.model import (
    Attempt,
    Attribution,
    BudgetCheck,
    BudgetHold,
    Message,
    Request,
    Usage,
)
from litellm_cost_otel.settings import ATTRIBUTION_FIELDS
from litellm_cost_otel.spans import DirectSpanWriter, OwnTracerProvider, SpanWriter, span_writer
from litellm_cost_otel.telemetry import INSTRUMENTATION_SCOPE, SCHEMA_URL

NOW = 1_780_000_000 * 10**9
SCOPE = InstrumentationScope(INSTRUMENTATION_SCOPE, __version__, SCHEMA_URL)
RESOURCE = Resource({"service.name": "equality", "deployment.environment": "ci"})


class SequentialIds(IdGenerator):
    """Ids in a fixed order, so that both paths give every span the same ids (the trace ids
    spread over the range, so that a ratio sampler keeps some and drops others)."""

    def __init__(self) -> None:
        self._spans = itertools.count(1)
        self._traces = itertools.count(1)

    def generate_span_id(self) -> int:
        return next(self._spans)

    def generate_trace_id(self) -> int:
        return (next(self._traces) * 0x9E3779B97F4A7C15_F39CC0605CEDC834) % (2**128)

    def is_trace_id_random(self) -> bool:
        return True


def attempt(number: int, start: int, end: int | None, **fields: object) -> Attempt:
    values: dict[str, object] = dict(number=number, start_ns=NOW + start, end_ns=None if end is None else NOW + end,
                                     model_group="fast",
                                     deployment_model="mistral/mistral-small-latest", deployment_id="dep-1",
                                     provider="mistral", api_base="https://api.mistral.ai/v1")
    values.update(fields)
    return Attempt(**values)  # type: ignore[arg-type]


def mixed_workload() -> list[Request]:
    """One request of every shape the lifecycle makes."""
    who = Attribution(team_id="t-1", team_alias="payments", org_id="acme", key_alias="svc", key_hash="h" * 64,
                      user_id="u", end_user_id="e", tags=("a", "b"))
    answered = attempt(1, 1_000, 90_000_000, cost_usd=0.00042, usage=Usage(10, 20, 30, 4, 2, 3),
                       finish_reasons=("stop",), response_model="mistral-small-2409", response_id="r-1")
    stream = attempt(1, 1_000, 900_000_000, stream=True, time_to_first_chunk_s=0.3, cost_usd=1e-6,
                     usage=Usage(60, 25, 85), finish_reasons=("length",),
                     input_messages=(Message("user", "Hé ✓"),), output_messages=(Message("assistant", "…", "stop"),))
    requests = [
        Request("plain", NOW, model_group="fast", attempts=[answered], end_ns=NOW + 95_000_000, attribution=who),
        Request("stream", NOW, model_group="local", attempts=[stream], end_ns=NOW + 900_000_000,
                time_to_first_chunk_s=0.31, session_id="agent-7"),
        Request("retry", NOW, model_group="local", end_ns=NOW + 3 * 10**8, attempts=[
            attempt(1, 0, 10**8, error_type="ServiceUnavailableError"),
            attempt(2, 10**8, 3 * 10**8, cost_usd=2e-5, usage=Usage(3, 2, 5))]),
        Request("fallback", NOW, model_group="fast-outage", end_ns=NOW + 5 * 10**9, attempts=[
            attempt(1, 0, 10**9, error_type="RateLimitError", model_group="fast-outage"),
            attempt(2, 10**9, 2 * 10**9, error_type="RateLimitError", model_group="fast-outage"),
            attempt(3, 2 * 10**9, 5 * 10**9, fallback_depth=1, model_group="capable",
                    deployment_model="mistral/mistral-large-latest", cost_usd=3.5e-5)]),
        Request("failure", NOW, model_group="doomed", end_ns=NOW + 10**9, error_type="InternalServerError",
                error_description="InternalServerError on the last attempt",
                attempts=[attempt(1, 0, 10**9, error_type="InternalServerError")]),
        Request("abandoned", NOW, end_ns=NOW + 10**9, error_type="abandoned", error_description="request abandoned",
                attempts=[attempt(1, 0, None, error_type="abandoned")]),
        Request("refused", NOW, model_group="local", end_ns=NOW + 10**6, error_type="BudgetExceededError",
                budget=BudgetCheck("", (), 0, refused_by="team-daily")),
        Request("budgeted", NOW, model_group="local", end_ns=NOW + 10**8, attempts=[answered],
                budget=BudgetCheck("r", (BudgetHold("team-daily", "team", "k", 1e-4, 24.5),), NOW)),
        Request("clock", NOW, clock_adjusted=True, end_ns=NOW - 5, attempts=[attempt(1, -10, 10**12)]),
        Request("sampled-parent", NOW, model_group="fast", end_ns=NOW + 10**8, attempts=[answered],
                parent={"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01", "tracestate": "vendor=x"}),
        Request("unsampled-parent", NOW, model_group="fast", end_ns=NOW + 10**8, attempts=[answered],
                parent={"traceparent": "00-" + "12" * 16 + "-" + "34" * 8 + "-00"}),
    ]
    # A parent span of litellm's own (its "otel" callback) and a bare caller's context.
    remote = trace.SpanContext(0xFEED << 64, 0xBEEF, is_remote=True, trace_flags=trace.TraceFlags(1))
    requests.append(Request("otel-parent", NOW, end_ns=NOW + 10**8, attempts=[answered],
                            parent=trace.NonRecordingSpan(remote)))
    return requests * 20  # enough traces for a ratio sampler to keep some and drop others


def finished_spans(provider: TracerProvider, requests: list[Request]) -> tuple[Any, ...]:
    """What the provider's processors are handed for the requests (ReadableSpans or EncodedSpans)."""
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    writer = span_writer(provider, SCOPE, ATTRIBUTION_FIELDS, openinference=True)
    for request in requests:
        writer.emit(request)
    return memory.get_finished_spans()


def exported(provider: TracerProvider, requests: list[Request]) -> bytes:
    spans = finished_spans(provider, requests)
    assert spans, "nothing exported"
    early = [span for span in spans if isinstance(span, EncodedSpan)]
    if early:
        assert len(early) == len(spans) and isinstance(provider, OwnTracerProvider) and provider.span_encoder
        return provider.span_encoder.export_request(early)
    return bytes(encode_spans(spans).SerializeToString())


@pytest.fixture(params=["default", "always_on", "parent_ratio", "ratio", "always_off"])
def sampler(request: pytest.FixtureRequest) -> Iterator[Sampler]:
    # "default" is the SDK's own DEFAULT_ON (what OTEL_TRACES_SAMPLER unset gives), whose verdict
    # the direct path takes without asking it; the equal ParentBased(ALWAYS_ON) is asked.
    yield {"default": DEFAULT_ON, "always_on": ParentBased(ALWAYS_ON),
           "parent_ratio": ParentBased(TraceIdRatioBased(0.5)), "ratio": TraceIdRatioBased(0.5),
           "always_off": ALWAYS_OFF}[request.param]


def test_the_direct_path_exports_exactly_what_live_spans_export(sampler: Sampler) -> None:
    live = TracerProvider(resource=RESOURCE, sampler=sampler, id_generator=SequentialIds(), shutdown_on_exit=False)
    direct = OwnTracerProvider(resource=RESOURCE, sampler=sampler, id_generator=SequentialIds(),
                               shutdown_on_exit=False)
    assert isinstance(span_writer(live, SCOPE, (), True), SpanWriter)
    assert isinstance(span_writer(direct, SCOPE, (), True), DirectSpanWriter)
    workload = mixed_workload()
    if sampler is ALWAYS_OFF:
        for provider in (live, direct):
            memory = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(memory))
            for request in workload:
                span_writer(provider, SCOPE, (), True).emit(request)
            assert memory.get_finished_spans() == ()
        return
    encoded = OwnTracerProvider(resource=RESOURCE, sampler=sampler, id_generator=SequentialIds(),
                                shutdown_on_exit=False)
    encoded.span_encoder = SpanEncoder(RESOURCE, SCOPE)  # as build_tracer_provider sets it for OTLP/gRPC
    live_bytes, direct_bytes = exported(live, workload), exported(direct, workload)
    assert direct_bytes == live_bytes
    assert exported(encoded, workload) == live_bytes
    # The comparison saw a real mix: both kinds of span, and (with a ratio) traces left out.
    assert b"litellm.request fast" in live_bytes and b"chat mistral-small-latest" in live_bytes


def test_attribute_limits_from_the_environment_apply_on_the_direct_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "5")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "7")
    live = TracerProvider(resource=RESOURCE, id_generator=SequentialIds(), shutdown_on_exit=False)
    direct = OwnTracerProvider(resource=RESOURCE, id_generator=SequentialIds(), shutdown_on_exit=False)
    workload = mixed_workload()[:12]
    direct.span_encoder = SpanEncoder(RESOURCE, SCOPE)  # not used: it would not apply the limits
    assert span_writer(direct, SCOPE, (), True)._encoder is None  # type: ignore[union-attr]
    direct_bytes = exported(direct, workload)
    assert direct_bytes == exported(live, workload)
    assert b"mistral_ai" not in direct_bytes  # gen_ai.provider.name cut to 5 characters, names are not


class RefusingEncoder(SpanEncoder):
    """An early encoder that cannot write the request spans (as for a value the library rejects)."""

    def span(self, name: str, *args: object, **kwargs: object) -> EncodedSpan:
        if name.startswith("litellm.request"):
            raise ValueError("cannot encode")
        return super().span(name, *args, **kwargs)  # type: ignore[arg-type]


def test_a_span_the_early_encoder_cannot_write_goes_out_as_a_readable_span() -> None:
    live = TracerProvider(resource=RESOURCE, id_generator=SequentialIds(), shutdown_on_exit=False)
    direct = OwnTracerProvider(resource=RESOURCE, id_generator=SequentialIds(), shutdown_on_exit=False)
    direct.span_encoder = RefusingEncoder(RESOURCE, SCOPE)
    workload = mixed_workload()[:12]
    spans = finished_spans(direct, workload)
    readable = [span for span in spans if not isinstance(span, EncodedSpan)]
    early = [span for span in spans if isinstance(span, EncodedSpan)]
    assert readable and early and all(span.name.startswith("litellm.request") for span in readable)
    # Both kinds together still make exactly what live spans make (as the exporter sends them, in two parts).
    live_spans = finished_spans(live, workload)
    live_requests = [span for span in live_spans if span.name.startswith("litellm.request")]
    live_attempts = [span for span in live_spans if not span.name.startswith("litellm.request")]
    assert encode_spans(readable).SerializeToString() == encode_spans(live_requests).SerializeToString()
    assert direct.span_encoder.export_request(early) == encode_spans(live_attempts).SerializeToString()


def test_early_encoded_spans_wait_in_the_queue_as_bytes_the_collector_does_not_track(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A queued span waits up to 5 s: an object the garbage collector tracks would reach its
    oldest generation and bring the proxy's next full collection nearer."""
    import gc

    from litellm_cost_otel.devtools.otlp_receiver import OtlpReceiver
    from litellm_cost_otel.settings import Settings
    from litellm_cost_otel.telemetry import SCOPE as PLUGIN_SCOPE
    from litellm_cost_otel.telemetry import build_tracer_provider

    receiver = OtlpReceiver().start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")  # nothing leaves before the flush below
        provider: Any = build_tracer_provider(Settings(), {})
        workload = [request for request in mixed_workload()[:12] if request.parent is None]
        writer = span_writer(provider, PLUGIN_SCOPE, (), True)
        for request in workload:
            writer.emit(request)
        [processor] = provider.processors
        queued = list(processor._queue)
        expected = sum(1 + len(request.attempts) for request in workload)
        assert len(queued) == expected and all(type(span) is bytes for span in queued)
        assert not any(gc.is_tracked(span) for span in queued)
        provider.force_flush()
        received = receiver.wait_for(lambda found: len(found) >= expected)
        assert sorted(span.name for span in received) == sorted(
            [attributes_module.request_span_name(request) for request in workload]
            + [attributes_module.attempt_span_name(attempt) for request in workload for attempt in request.attempts])
        provider.shutdown()
    finally:
        receiver.stop()
