"""Places spans: one request span and one attempt span per attempt, with explicit parents
and explicit start and end times, created when the request is over.

The proxy runs its success callback in a background task after the response is sent, when no
span of the request is current any more; so nothing here relies on "the active span".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import attributes
from .encoding import EncodedSpan, SpanEncoder
from .model import Request

_PROPAGATOR = TraceContextTextMapPropagator()


def caller_context() -> otel_context.Context | None:
    """The in-process caller's context, if it has a span (litellm.Router without the proxy)."""
    if trace.get_current_span().get_span_context().is_valid:
        return otel_context.get_current()
    return None


def _parent_context(hint: object) -> tuple[otel_context.Context | None, SpanKind]:
    """The parent of the request span, and that span's kind.

    - litellm's own proxy request span (its "otel" callback made one): our span is INTERNAL;
    - the incoming headers: continue the client's W3C traceparent when sent, else start a new
      trace; either way our span is the proxy's SERVER span for this request;
    - an in-process caller's context: INTERNAL under the caller's span.
    """
    if isinstance(hint, otel_context.Context):
        return hint, SpanKind.INTERNAL
    if isinstance(hint, Mapping):
        carrier = {key.lower(): value for key, value in hint.items()
                   if isinstance(key, str) and key.lower() in ("traceparent", "tracestate")}
        return (_PROPAGATOR.extract(carrier) if carrier else otel_context.Context()), SpanKind.SERVER
    if hint is not None and callable(getattr(hint, "get_span_context", None)):
        return trace.set_span_in_context(cast(trace.Span, hint), otel_context.Context()), SpanKind.INTERNAL
    return otel_context.Context(), SpanKind.INTERNAL


def _bounds(request: Request) -> tuple[int, int]:
    start = request.received_ns
    return start, max(request.end_ns or start, start)


def _attempt_bounds(start_ns: int, end_ns: int | None, request_start: int, request_end: int) -> tuple[int, int]:
    # Keep every attempt inside the request's time range, whatever the clocks said.
    attempt_start = min(max(start_ns, request_start), request_end)
    return attempt_start, min(max(end_ns or request_end, attempt_start), request_end)


class SpanWriter:
    """Through the tracer: live spans started and ended at once (for any tracer provider)."""

    def __init__(self, tracer: trace.Tracer, attribution: Collection[str] = (), openinference: bool = True) -> None:
        self._tracer = tracer
        self._attribution = attribution  # which who-spent-it fields the operator enabled
        self._openinference = openinference  # also the OpenInference twins of the GenAI names

    def emit(self, request: Request) -> None:
        start, end = _bounds(request)
        parent, kind = _parent_context(request.parent)
        request_span = self._tracer.start_span(
            attributes.request_span_name(request), context=parent, kind=kind,
            attributes=attributes.request_attributes(request, self._attribution, self._openinference),
            start_time=start,
        )
        if request.error_type is not None:
            request_span.set_status(Status(StatusCode.ERROR, request.error_description or request.error_type))
        request_context = trace.set_span_in_context(request_span)
        for attempt in request.attempts:
            attempt_start, attempt_end = _attempt_bounds(attempt.start_ns, attempt.end_ns, start, end)
            attempt_span = self._tracer.start_span(
                attributes.attempt_span_name(attempt), context=request_context, kind=SpanKind.CLIENT,
                attributes=attributes.attempt_attributes(attempt, self._openinference), start_time=attempt_start,
            )
            if attempt.error_type is not None:
                attempt_span.set_status(Status(StatusCode.ERROR, attempt.error_type))
            attempt_span.end(end_time=attempt_end)
        request_span.end(end_time=end)


class OwnTracerProvider(TracerProvider):
    """The plugin's private provider; it remembers its span processors, so that the
    DirectSpanWriter can hand them finished spans, and, when every exporter behind them takes
    early-encoded spans, the encoder to make them with."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.processors: list[SpanProcessor] = []
        self.span_encoder: SpanEncoder | None = None

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self.processors.append(span_processor)


@dataclass(slots=True)
class _Started:
    name: str
    kind: SpanKind
    context: SpanContext
    parent: SpanContext | None
    attributes: Any  # the sampler's attributes; None when the span is not sampled


class DirectSpanWriter:
    """The same spans as SpanWriter's, built as finished `ReadableSpan`s and handed to the
    provider's processors (`on_end`), as the SDK does when a live span ends.

    The spans are made when the request is over, with explicit times: a live span's machinery
    (attribute validation under a lock, its processors' `on_start`, per-span bookkeeping)
    buys nothing here and costs several times more. What decides the output stays the SDK's:
    the provider's sampler (parent-based on the client's trace flags by default), id
    generator, resource and span limits. tests/test_spans.py proves the export identical."""

    def __init__(self, provider: OwnTracerProvider, scope: InstrumentationScope, attribution: Collection[str] = (),
                 openinference: bool = True) -> None:
        self._provider = provider
        self._scope = scope
        self._attribution = attribution
        self._openinference = openinference
        limits = SpanLimits()  # from OTEL_SPAN_ATTRIBUTE_* / OTEL_ATTRIBUTE_* like the provider's own
        # The plugin's spans have well under the default 128 attributes, and no value length
        # limit is set by default: then bounding them would change nothing, and is skipped.
        self._bounded = limits.max_span_attribute_length is not None or (
            limits.max_span_attributes is not None and limits.max_span_attributes < 128)
        self._limits = limits
        encoder = provider.span_encoder
        # Early encoding writes the attributes as they are: only when no limit would cut them.
        self._encoder = encoder if encoder is not None and encoder.scope == scope and not self._bounded else None

    def emit(self, request: Request) -> None:
        start, end = _bounds(request)
        parent, kind = _parent_context(request.parent)
        request_span = self._start(attributes.request_span_name(request), parent, kind,
                                   attributes.request_attributes(request, self._attribution, self._openinference))
        for attempt in request.attempts:
            attempt_start, attempt_end = _attempt_bounds(attempt.start_ns, attempt.end_ns, start, end)
            span = self._start(attributes.attempt_span_name(attempt), request_span.context, SpanKind.CLIENT,
                               attributes.attempt_attributes(attempt, self._openinference))
            self._end(span, attempt_start, attempt_end, attempt.error_type)
        # Attempts end before their request, as with live spans: the processors see them in that order.
        self._end(request_span, start, end, request.error_type and (request.error_description or request.error_type))

    def _start(self, name: str, parent: otel_context.Context | SpanContext | None, kind: SpanKind,
               span_attributes: dict[str, Any]) -> _Started:
        """What `Tracer.start_span` decides: ids, parent, the sampler's verdict and attributes.
        An unsampled span still has a context: its attempts ask the sampler with it as parent
        (given as that SpanContext: a Context around it is made only for a sampler to read)."""
        provider = self._provider
        if isinstance(parent, SpanContext):
            parent_context = parent
        else:
            parent_context = trace.get_current_span(parent).get_span_context()
        if not parent_context.is_valid:
            parent_span: SpanContext | None = None
            trace_id = provider.id_generator.generate_trace_id()
            random_trace_id = provider.id_generator.is_trace_id_random()
        else:
            parent_span, trace_id = parent_context, parent_context.trace_id
            random_trace_id = parent_context.trace_flags.random_trace_id
        if provider.sampler is DEFAULT_ON:
            # The SDK's default, ParentBased(ALWAYS_ON), decides without looking at the span: the
            # parent's sampled flag, or sampled at the root; its attributes as given; the
            # parent's trace state. Its verdict, without the calls and objects of asking it.
            is_sampled = parent_span is None or parent_span.trace_flags.sampled
            trace_state = parent_span.trace_state if parent_span is not None else None
            sampler_attributes: Any = span_attributes
        else:
            if isinstance(parent, SpanContext):
                parent = trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())
            sampled = provider.sampler.should_sample(parent, trace_id, name, kind, span_attributes, ())
            is_sampled = sampled.decision == Decision.RECORD_AND_SAMPLE  # (Decision.is_sampled, untyped)
            trace_state, sampler_attributes = sampled.trace_state, sampled.attributes
        flags = TraceFlags.SAMPLED if is_sampled else TraceFlags.DEFAULT
        if random_trace_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        context = SpanContext(trace_id, provider.id_generator.generate_span_id(), is_remote=False,
                              trace_flags=TraceFlags(flags), trace_state=trace_state)
        return _Started(name, kind, context, parent_span, sampler_attributes if is_sampled else None)

    def _end(self, span: _Started, start: int, end: int, error: str | None) -> None:
        """What `Span.end` hands the processors (only sampled spans: the others are never exported)."""
        if span.attributes is None:
            return
        finished: ReadableSpan | EncodedSpan | None = None
        if self._encoder is not None:
            try:
                finished = self._encoder.span(span.name, span.context, span.parent, span.kind, start, end, error,
                                              span.attributes)
            except Exception:  # a value it cannot write: the span goes the library's way
                finished = None
        if finished is None:
            finished = self._readable(span, start, end, error)
        for processor in self._provider.processors:
            processor.on_end(finished)  # type: ignore[arg-type]  # EncodedSpan: see encoding.py

    def _readable(self, span: _Started, start: int, end: int, error: str | None) -> ReadableSpan:
        status = Status(StatusCode.ERROR, error) if error is not None else Status(StatusCode.UNSET)
        return ReadableSpan(span.name, span.context, span.parent, self._provider.resource,
                            self._attributes(span.attributes), kind=span.kind, status=status, start_time=start,
                            end_time=end, instrumentation_scope=self._scope)

    def _attributes(self, found: Any) -> Any:
        if not self._bounded:
            return found
        return BoundedAttributes(self._limits.max_span_attributes, found, immutable=True,
                                 max_value_len=self._limits.max_span_attribute_length)


def span_writer(provider: Any, scope: InstrumentationScope, attribution: Collection[str],
                openinference: bool) -> SpanWriter | DirectSpanWriter:
    """The direct writer on the plugin's own provider; through the tracer on any other."""
    if isinstance(provider, OwnTracerProvider):
        return DirectSpanWriter(provider, scope, attribution, openinference)
    tracer = provider.get_tracer(scope.name, scope.version, schema_url=scope.schema_url)
    return SpanWriter(tracer, attribution, openinference)

