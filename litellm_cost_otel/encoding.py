"""OTLP encoding of spans: early, on the request path, for the plugin's own spans; at export,
reusing the encoded form of attribute key-values that repeat, for any other.

The OTLP exporter builds a protobuf KeyValue for every attribute of every span, about 3 µs
each in Python, on the export thread, which shares the GIL (and, on a busy proxy, the core)
with the event loop. Most of the plugin's attributes repeat from one request to the next
(model group, provider, operation, model, currency, span kinds, token counts of similar
prompts), so their KeyValue messages are built once and reused: encoding a request's spans
costs about a third less (63 instead of 87 µs in `make bench-micro`).

The plugin's own spans go further (`SpanEncoder`): each is written straight to the bytes of its
OTLP `Span` message when the request ends, handed to the batch processor as those bytes
(`EncodedSpan`) and queued as plain bytes. That skips building a ReadableSpan and, at export,
a protobuf message per span and per attribute (several times cheaper in all), and a queued
span is no object the garbage collector tracks, instead of about eleven. The wire format
is protobuf's: fields in number order, proto3 defaults left out; the resource and scope
around the spans, and every value that is not a plain string, number or bool, are encoded
by the library.

Both equal opentelemetry-exporter-otlp-proto-common's `encode_spans` byte for byte (tests
compare the serialized bytes). Where the library's private helpers are missing (another
version), the library's encoder is used and nothing is encoded early.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags

try:  # the library's own helpers, so that everything but the attributes is encoded its way
    from opentelemetry.exporter.otlp.proto.common._internal import (
        _encode_instrumentation_scope,
        _encode_resource,
        _encode_span_id,
        _encode_trace_id,
        _encode_value,
    )
    from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import (
        _SPAN_KIND_MAP,
        _encode_events,
        _encode_links,
        _encode_parent_id,
        _encode_status,
        _encode_trace_state,
        _span_flags,
    )
except ImportError:  # pragma: no cover - depends on the installed exporter version
    _encode_value = None  # type: ignore[assignment]

log = logging.getLogger("litellm_cost_otel")
_SCALARS = (str, bool, int, float)


class KeyValueCache:
    """Encoded attribute key-values by (key, type, value); emptied when full, so bounded.

    The type is part of the key because True == 1 == 1.0 in Python, not in OTLP."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: dict[Hashable, KeyValue] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def encode(self, attributes: Mapping[str, Any] | None) -> list[KeyValue]:
        encoded = []
        entries = self._entries
        for key, value in (attributes or {}).items():
            kind = type(value)
            if kind in _SCALARS or (kind is tuple and all(type(item) is str for item in value)):
                cache_key = (key, kind, value)
                key_value = entries.get(cache_key)
                if key_value is None:
                    if len(entries) >= self.max_entries:
                        entries.clear()
                    key_value = entries[cache_key] = KeyValue(key=key, value=_encode_value(value))
            else:
                key_value = KeyValue(key=key, value=_encode_value(value))
            encoded.append(key_value)
        return encoded


def _encode_span(span: ReadableSpan, key_values: KeyValueCache) -> ProtoSpan:
    """The library's `_encode_span`, with the attributes taken from the cache."""
    context = span.get_span_context()
    if context is None:  # never for an ended SDK span; the library's encoder handles the rest
        raise ValueError("span without a context")
    # Optional fields are passed as the library passes them: None leaves a field unset.
    return ProtoSpan(
        trace_id=_encode_trace_id(context.trace_id),
        span_id=_encode_span_id(context.span_id),
        trace_state=_encode_trace_state(context.trace_state),  # type: ignore[arg-type]
        parent_span_id=_encode_parent_id(span.parent),  # type: ignore[arg-type]
        name=span.name,
        kind=_SPAN_KIND_MAP[span.kind],
        start_time_unix_nano=span.start_time,  # type: ignore[arg-type]
        end_time_unix_nano=span.end_time,  # type: ignore[arg-type]
        attributes=key_values.encode(span.attributes),
        events=_encode_events(span.events),
        links=_encode_links(span.links),
        status=_encode_status(span.status),
        dropped_attributes_count=span.dropped_attributes,
        dropped_events_count=span.dropped_events,
        dropped_links_count=span.dropped_links,
        flags=_span_flags(span.parent),
    )


def encode_spans(spans: Sequence[ReadableSpan], key_values: KeyValueCache) -> ExportTraceServiceRequest:
    """One export request: spans grouped by resource, then by instrumentation scope.

    Groups by identity (the library hashes every span's Resource, a JSON dump each time);
    a provider's spans share one Resource and one scope object per tracer."""
    if _encode_value is None:
        return library_encode_spans(spans)
    grouped: dict[int, tuple[Any, dict[int, tuple[Any, list[ProtoSpan]]]]] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope or None
        scopes = grouped.setdefault(id(resource), (resource, {}))[1]
        scopes.setdefault(id(scope), (scope, []))[1].append(_encode_span(span, key_values))
    return ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(
            resource=_encode_resource(resource),
            scope_spans=[ScopeSpans(scope=_encode_instrumentation_scope(scope), spans=encoded,
                                    schema_url=scope.schema_url if scope else None)  # type: ignore[arg-type]
                         for scope, encoded in scopes.values()],
            schema_url=resource.schema_url,
        )
        for resource, scopes in grouped.values()
    ])


# --- early encoding of the plugin's own spans ---------------------------------------------

# What BatchSpanProcessor.on_end reads of a span: only sampled spans are ever encoded.
_SAMPLED = SpanContext(0, 0, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
_INT64 = (-(2**63), 2**63 - 1)
_pack_double = struct.Struct("<d").pack
_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack


class EncodedSpan(bytes):
    """A finished span as the bytes of its OTLP `Span` message, handed to the batch processor's
    `on_end` in place of a ReadableSpan (it has the `context` on_end reads); the plugin's
    processor queues its plain bytes, and only the plugin's exporter (below) takes either."""

    __slots__ = ()
    context = _SAMPLED


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [bytes((number,)) for number in range(0x80)]
_EMPTY: dict[Any, bytes] = {}


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag, the payload's length, the payload."""
    return tag + _varint(len(payload)) + payload


def _kind_field(kind: SpanKind) -> bytes:
    number = _SPAN_KIND_MAP[kind]
    return b"\x30" + _varint(number) if number else b""


def _flags_field(parent: SpanContext | None) -> bytes:
    flags = _span_flags(parent)
    return b"\x85\x01" + _pack_fixed32(flags) if flags else b""


# Fields that take a few values, written once (the library's enum lookups cost µs each): the
# kinds of most spans, and the flags, which the library derives from the parent's remoteness.
_CLIENT, _INTERNAL = SpanKind.CLIENT, SpanKind.INTERNAL
if _encode_value is not None:
    _KIND_FIELDS = (_kind_field(_CLIENT), _kind_field(_INTERNAL))
    _FLAGS_FIELDS = (_flags_field(None), _flags_field(SpanContext(1, 1, is_remote=True)))


def _serialized(message: Any) -> bytes:
    return bytes(message.SerializeToString())


class SpanEncoder:
    """Writes spans of one resource and scope as OTLP bytes, and export requests around them."""

    def __init__(self, resource: Resource, scope: InstrumentationScope, max_entries: int = 4096) -> None:
        self.resource, self.scope = resource, scope
        self.max_entries = max_entries
        # The attribute fields of values seen before, by key and then value, one table per type
        # (True == 1 in Python, not in OTLP): no tuple to make and hash per attribute.
        self._strings: dict[str, dict[str, bytes]] = {}
        self._integers: dict[str, dict[int, bytes]] = {}
        self._lists: dict[tuple[str, tuple[str, ...]], bytes] = {}  # of strings (tags, finish reasons)
        self._cached = 0  # entries in the three tables together
        self._keys: dict[str, bytes] = {}  # key -> the KeyValue's key field
        self._float_heads: dict[str, bytes] = {}  # key -> its float attribute field but the value
        self._names: dict[str, bytes] = {}  # span name -> its field (names are bounded, see attributes.py)
        # ResourceSpans and ScopeSpans around the spans: each field encoded by the library,
        # in field-number order (resource or scope, spans, schema_url).
        self._resource_head = _serialized(ResourceSpans(resource=_encode_resource(resource)))
        self._resource_tail = _serialized(ResourceSpans(schema_url=resource.schema_url))
        self._scope_head = _serialized(ScopeSpans(scope=_encode_instrumentation_scope(scope)))
        self._scope_tail = _serialized(ScopeSpans(schema_url=scope.schema_url or ""))

    def span(self, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind, start: int,
             end: int, error: str | None, attributes: Mapping[str, Any]) -> EncodedSpan:
        """One `Span` message, as the library's `_encode_span` makes it for such a span (no
        events, links or dropped counts: the plugin's spans have none)."""
        parts = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"), b"\x12\x08", context.span_id.to_bytes(8, "big")]
        if context.trace_state:
            parts.append(_field(b"\x1a", str(_encode_trace_state(context.trace_state)).encode()))
        if parent is not None:
            parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
        if name:
            name_field = self._names.get(name)
            if name_field is None:
                if len(self._names) >= self.max_entries:
                    self._names.clear()
                name_field = self._names[name] = _field(b"\x2a", name.encode())
            parts.append(name_field)
        parts.append(_KIND_FIELDS[0] if kind is _CLIENT else _KIND_FIELDS[1] if kind is _INTERNAL
                     else _kind_field(kind))
        if start:
            parts += (b"\x39", _pack_fixed64(start))
        if end:
            parts += (b"\x41", _pack_fixed64(end))
        strings, integers, empty = self._strings, self._integers, _EMPTY
        for key, value in attributes.items():
            value_type = type(value)
            if value_type is str:
                found = strings.get(key, empty).get(value)
            elif value_type is int:
                found = integers.get(key, empty).get(value)
            else:
                found = None
            parts.append(found if found is not None else self._attribute(key, value, value_type))
        status = b""
        if error is not None:
            status = (_field(b"\x12", error.encode()) if error else b"") + b"\x18" + _varint(StatusCode.ERROR.value)
        parts.append(_field(b"\x7a", status))  # always present, as the library sets it
        parts.append(_FLAGS_FIELDS[parent is not None and parent.is_remote])
        return EncodedSpan(b"".join(parts))

    def _attribute(self, key: str, value: Any, kind: type) -> bytes:
        """The `attributes` field (9) for one key-value not found in the tables. Floats (costs,
        latencies: rarely the same twice, and cheap to write) and bools (two fixed forms) are
        not kept; nor are lists other than of strings, since [1] and [True] would be one key."""
        if kind is float:  # the field up to the value is the same for every float of a key
            head = self._float_heads.get(key)
            if head is None:
                head = self._float_heads[key] = _field(b"\x4a", self._key(key) + b"\x12\x09\x21" + bytes(8))[:-8]
            return head + _pack_double(value)
        list_key = None
        if kind is list and all(type(item) is str for item in value):
            list_key = (key, tuple(value))
            found = self._lists.get(list_key)
            if found is not None:
                return found
        if kind is str:
            found = _field(b"\x4a", self._key(key) + _field(b"\x12", _field(b"\x0a", value.encode())))
        elif kind is bool:
            found = _field(b"\x4a", self._key(key) + (b"\x12\x02\x10\x01" if value else b"\x12\x02\x10\x00"))
        elif kind is int and _INT64[0] <= value <= _INT64[1]:
            found = _field(b"\x4a", self._key(key) + _field(b"\x12", b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)))
        else:  # arrays and anything else: the library's encoding (and its errors)
            found = _field(b"\x4a", _serialized(KeyValue(key=key, value=_encode_value(value))))
        if kind is str or kind is int or list_key is not None:
            if self._cached >= self.max_entries:  # bounded: start afresh
                self._strings, self._integers, self._lists, self._cached = {}, {}, {}, 0
            self._cached += 1
            if kind is str:
                self._strings.setdefault(key, {})[value] = found
            elif kind is int:
                self._integers.setdefault(key, {})[value] = found
            else:
                self._lists[list_key] = found  # type: ignore[index]
        return found

    def _key(self, key: str) -> bytes:
        found = self._keys.get(key)
        if found is None:
            if len(self._keys) >= self.max_entries:
                self._keys.clear()
                self._float_heads.clear()
            found = self._keys[key] = _field(b"\x0a", key.encode())
        return found

    def export_request(self, spans: Sequence[bytes]) -> bytes:
        """An ExportTraceServiceRequest holding `spans` under this resource and scope."""
        scope_spans = self._scope_head + b"".join([_field(b"\x12", span) for span in spans]) + self._scope_tail
        resource_spans = self._resource_head + _field(b"\x12", scope_spans) + self._resource_tail
        return _field(b"\x0a", resource_spans)


def early_encoding_available() -> bool:
    return _encode_value is not None


class _BytesTraceServiceStub:
    """The TraceService stub, taking an already serialized request."""

    def __init__(self, channel: Any) -> None:
        self.Export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString)


class CachingOTLPSpanExporter(OTLPSpanExporter):
    """The OTLP/gRPC span exporter (same settings, retries, time-outs), sending the request as
    bytes: the plugin's early-encoded spans joined under their resource and scope, any other
    span through `encode_spans` above (any error in it falls back to the library's encoder)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_values = KeyValueCache()
        self.span_encoder: SpanEncoder | None = None  # set when the plugin's provider encodes early
        self._warned = False
        # The exporter remakes its client from `_stub` when it reconnects.
        self._stub = _BytesTraceServiceStub
        if self._channel is not None:
            self._client = _BytesTraceServiceStub(self._channel)

    def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
        # Early-encoded spans arrive as bytes (the batch processor queues an EncodedSpan's bytes).
        early: list[bytes] = [span for span in data if isinstance(span, bytes)]
        others = [span for span in data if not isinstance(span, bytes)] if len(early) < len(data) else []
        request = b""
        if early:
            if self.span_encoder is None:  # (a wiring mistake: the batch is counted as dropped)
                raise ValueError("early-encoded spans reached an exporter without their encoder")
            request = self.span_encoder.export_request(early)
        if others:
            request += self._encode(others)
        return request

    def _encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        try:
            return _serialized(encode_spans(spans, self.key_values))
        except Exception:  # never lose a batch to the cache: the library's way still works
            if not self._warned:
                self._warned = True
                log.warning("litellm_cost_otel: cached OTLP encoding failed; using the library's", exc_info=True)
            return _serialized(library_encode_spans(spans))
