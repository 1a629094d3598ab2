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
from litellm_cost_otel.encoding import CachingOTLPSpanExporter, EncodedSpan, KeyValueCache, SpanEncoder, encode_spans
from litellm_cost_otel.settings import Settings
from litellm_cost_otel.telemetry import build_tracer_provider, exporters_from_env

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
    assert request == library_encode_spans([good, bad]).SerializeToString()
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



# --- early encoding: each span written to its OTLP bytes on the request path -----------------

def early(encoder: SpanEncoder, span: ReadableSpan) -> EncodedSpan:
    assert span.context is not None and span.status is not None
    error = span.status.description or "" if span.status.status_code is StatusCode.ERROR else None
    return encoder.span(span.name, span.context, span.parent, span.kind, span.start_time or 0, span.end_time or 0,
                        error, span.attributes or {})


def without_events_and_links(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """The plugin's spans have neither; the early encoder writes none."""
    return [ReadableSpan(span.name, span.context, span.parent, span.resource, span.attributes, kind=span.kind,
                         status=span.status, start_time=span.start_time, end_time=span.end_time,
                         instrumentation_scope=span.instrumentation_scope) for span in spans]


def test_early_encoding_equals_the_library_for_real_sdk_spans() -> None:
    spans = without_events_and_links(varied_sdk_spans())
    scope = spans[0].instrumentation_scope
    assert scope is not None
    spans = [span for span in spans if span.instrumentation_scope == scope]  # one scope per encoder
    encoder = SpanEncoder(RESOURCE, scope, max_entries=7)  # small: the cache overflows on the way
    for _ in range(2):  # the second time from the cache
        encoded = [early(encoder, span) for span in spans]
        assert encoder.export_request(encoded) == library_encode_spans(spans).SerializeToString()
    assert b"vendor=value" in encoder.export_request(encoded)  # the remote parent's trace state came along


def test_early_encoding_keeps_values_equal_in_python_apart() -> None:
    encoder = SpanEncoder(RESOURCE, SCOPE)
    values = (True, 1, 1.0, "1", ["1"], [True], [1], 0, False, "", [], -1, 2**63 - 1, -(2**63), 1e300, -0.0)
    for value in values + values:  # the second time from the tables
        span = ReadableSpan(name="s", context=SpanContext(1, 2, False), attributes={"k": value}, resource=RESOURCE,
                            instrumentation_scope=SCOPE, start_time=1, end_time=2)
        assert encoder.export_request([early(encoder, span)]) == library_encode_spans([span]).SerializeToString()


early_values = st.one_of(scalars, st.lists(st.text(max_size=5), max_size=3), st.lists(st.integers(-5, 5), max_size=3),
                         st.lists(st.booleans(), max_size=2), st.lists(st.floats(), max_size=2))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "gen_ai.x", "llm.y", "é"]), early_values, max_size=4),
                min_size=1, max_size=6), st.text(max_size=30), st.sampled_from(list(SpanKind)),
       st.one_of(st.none(), st.text(max_size=10)), st.integers(0, 2**64 - 1))
def test_early_encoding_equals_the_library_for_any_span(attribute_sets: list[dict[str, Any]], name: str,
                                                       kind: SpanKind, error: str | None, time: int) -> None:
    encoder = SpanEncoder(RESOURCE, SCOPE, max_entries=8)
    parent = SpanContext(3, 4, is_remote=True, trace_flags=TraceFlags(1))
    spans = [ReadableSpan(name=name, context=SpanContext(2**128 - 1 - number, number + 1, False), kind=kind,
                          parent=parent if number % 2 else None, attributes=attributes, resource=RESOURCE,
                          status=Status(StatusCode.ERROR, error) if error is not None else Status(StatusCode.UNSET),
                          instrumentation_scope=SCOPE, start_time=time, end_time=time)
             for number, attributes in enumerate(attribute_sets)]
    expected = library_encode_spans(spans).SerializeToString()
    assert encoder.export_request([early(encoder, span) for span in spans]) == expected
    assert encoder.export_request([early(encoder, span) for span in spans]) == expected  # from the cache


def test_a_value_the_library_rejects_raises_from_the_early_encoder() -> None:
    # (the span writer then hands that span over as a ReadableSpan: tests/test_spans.py)
    with pytest.raises(Exception, match="Invalid type"):
        SpanEncoder(RESOURCE, SCOPE).span("s", SpanContext(1, 2, False), None, SpanKind.INTERNAL, 1, 2, None,
                                          {"k": object()})


def test_early_encoded_and_other_spans_arrive_together_over_grpc() -> None:
    receiver = OtlpReceiver().start()
    exporter = CachingOTLPSpanExporter(endpoint=receiver.endpoint, insecure=True)
    try:
        exporter.span_encoder = SpanEncoder(RESOURCE, SCOPE)
        spans = without_events_and_links(varied_sdk_spans())
        batch = [early(exporter.span_encoder, span) if number % 2 else span for number, span in enumerate(spans)]
        assert exporter.export(batch).name == "SUCCESS"
        received = receiver.wait_for(lambda found: len(found) >= len(spans))
        assert sorted((span.span_id, span.name, span.attributes.get("litellm.call_id")) for span in received) == \
            sorted((format(span.context.span_id, "016x"), span.name, (span.attributes or {}).get("litellm.call_id"))
                   for span in spans if span.context is not None)
    finally:
        exporter.shutdown()
        receiver.stop()


def test_early_encoding_only_when_every_exporter_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    for exporters, encodes in (("otlp", True), ("otlp,console", False), ("console", False)):
        provider: Any = build_tracer_provider(Settings(), {"OTEL_TRACES_EXPORTER": exporters})
        assert (provider.span_encoder is not None) is encodes, exporters
        provider.shutdown()
    provider = build_tracer_provider(Settings(), {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert provider.span_encoder is None  # type: ignore[union-attr]
    provider.shutdown()  # type: ignore[union-attr]
