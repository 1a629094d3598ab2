"""The export encoder with its key-value cache gives exactly the library's OTLP bytes."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from litellm_cost_otel.devtools.otlp_receiver import OtlpReceiver
from litellm_cost_otel.encoding import CachingOTLPSpanExporter, KeyValueCache, encode_spans
from litellm_cost_otel.telemetry import exporters_from_env

RESOURCE = Resource({"service.name": "litellm-proxy", "service.instance.id": "pod-1"})
SCOPE = InstrumentationScope("litellm_cost_otel", "1.0", "https://example.com/schema")


def same_bytes(spans: list[ReadableSpan], cache: KeyValueCache) -> bool:
    return encode_spans(spans, cache).SerializeToString() == library_encode_spans(spans).SerializeToString()


def varied_sdk_spans() -> list[ReadableSpan]:
    """Spans from a real SDK tracer: every kind of value, a remote parent with a tracestate,
    events, links, an error status, and values equal in Python but not in OTLP."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("litellm_cost_otel", "1.0")
    other_tracer = provider.get_tracer("another.scope")
    remote = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1),
                         trace_state=TraceState([("vendor", "value")]))
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    for number in range(40):
        attributes: dict[str, Any] = {
            "litellm.model_group": "fast" if number % 2 else "local",
            "litellm.call_id": f"call-{number}",
            "flag": True, "one": 1, "one_float": 1.0, "cost": number * 1e-6,
            "gen_ai.response.finish_reasons": ("stop",), "tokens": (1, 2, 3), "mixed": (True, False),
            "empty": "",
        }
        span = tracer.start_span(f"chat {number % 3}", context=parent if number % 5 == 0 else None,
                                 kind=SpanKind.CLIENT if number % 2 else SpanKind.SERVER, attributes=attributes)
        if number % 7 == 0:
            span.add_event("retry", {"attempt": number})
            span.add_link(remote, {"link.kind": "previous"})
        if number % 4 == 0:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        span.end()
    other_tracer.start_span("other").end()
    return list(exporter.get_finished_spans())


def test_equal_to_the_library_for_real_sdk_spans() -> None:
    spans = varied_sdk_spans()
    cache = KeyValueCache()
    # Twice through one cache: the second pass is served from it.
    assert same_bytes(spans, cache)
    cached = len(cache)
    assert same_bytes(spans, cache) and len(cache) == cached
    assert same_bytes(spans[:1], cache) and same_bytes([], cache)


def test_the_cache_stays_bounded_and_correct_when_it_overflows() -> None:
    spans = varied_sdk_spans()
    cache = KeyValueCache(max_entries=5)
    for batch in (spans, spans[3:], spans):
        assert same_bytes(batch, cache)
        assert len(cache) <= 5


def test_values_equal_in_python_are_kept_apart() -> None:
    cache = KeyValueCache()
    encoded = [cache.encode({"k": value})[0].value for value in (True, 1, 1.0, "1", ("1",))]
    assert [value.WhichOneof("value") for value in encoded] == [
        "bool_value", "int_value", "double_value", "string_value", "array_value"]


scalars = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=20))
values = st.one_of(scalars, st.lists(st.text(max_size=5), max_size=3).map(tuple),
                   st.lists(st.integers(-5, 5), max_size=3).map(tuple))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "gen_ai.x", "llm.y"]), values, max_size=4),
                min_size=1, max_size=6))
def test_equal_to_the_library_for_any_attributes(attribute_sets: list[dict[str, Any]]) -> None:
    spans = [ReadableSpan(name="s", context=SpanContext(1, number + 1, False), attributes=attributes,
                          resource=RESOURCE, instrumentation_scope=SCOPE, start_time=1, end_time=2)
             for number, attributes in enumerate(attribute_sets)]
    cache = KeyValueCache(max_entries=8)
    assert same_bytes(spans, cache) and same_bytes(spans, cache)


def test_a_batch_the_cached_encoder_cannot_take_goes_the_librarys_way(caplog: pytest.LogCaptureFixture) -> None:
    # The library logs and drops an attribute it cannot encode; the cached encoder raises,
    # and the exporter falls back to the library for that batch, without raising.
    good = ReadableSpan(name="good", context=SpanContext(1, 1, False), attributes={"k": "v"}, resource=RESOURCE,
                        start_time=1, end_time=2)
    bad = ReadableSpan(name="bad", context=SpanContext(1, 2, False), attributes={"k": object()}, resource=RESOURCE,
                       start_time=1, end_time=2)
    exporter = CachingOTLPSpanExporter(endpoint="http://127.0.0.1:9", insecure=True)
    with caplog.at_level(logging.WARNING, logger="litellm_cost_otel"):
        request = exporter._translate_data([good, bad])
    assert request.SerializeToString() == library_encode_spans([good, bad]).SerializeToString()
    assert "using the library's" in caplog.text
    exporter.shutdown()


def test_the_default_traces_exporter_is_the_caching_one_and_delivers(monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = OtlpReceiver().start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)  # the exporter reads it itself
        [exporter] = exporters_from_env({})
        assert isinstance(exporter, CachingOTLPSpanExporter)
        spans = varied_sdk_spans()
        exporter.export(spans)
        exporter.export(spans)  # the second time from the cache
        received = receiver.wait_for(lambda found: len(found) >= 2 * len(spans))
        assert len(received) == 2 * len(spans)
        by_name = {span.name: span for span in received if span.name.startswith("chat")}
        assert by_name["chat 1"].attributes["flag"] is True and by_name["chat 1"].attributes["one"] == 1
        assert isinstance(by_name["chat 1"].attributes["one_float"], float)
        exporter.shutdown()
    finally:
        receiver.stop()

