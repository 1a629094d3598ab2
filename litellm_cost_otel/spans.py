"""Places spans: one request span and one attempt span per attempt, with explicit parents
and explicit start and end times, created when the request is over.

The proxy runs its success callback in a background task after the response is sent, when no
span of the request is current any more; so nothing here relies on "the active span".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import attributes
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


class SpanWriter:
    def __init__(self, tracer: trace.Tracer, attribution: Collection[str] = (), openinference: bool = True) -> None:
        self._tracer = tracer
        self._attribution = attribution  # which who-spent-it fields the operator enabled
        self._openinference = openinference  # also the OpenInference twins of the GenAI names

    def emit(self, request: Request) -> None:
        start = request.received_ns
        end = max(request.end_ns or start, start)
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
            # Keep every attempt inside the request's time range, whatever the clocks said.
            attempt_start = min(max(attempt.start_ns, start), end)
            attempt_end = min(max(attempt.end_ns or end, attempt_start), end)
            attempt_span = self._tracer.start_span(
                attributes.attempt_span_name(attempt), context=request_context, kind=SpanKind.CLIENT,
                attributes=attributes.attempt_attributes(attempt, self._openinference), start_time=attempt_start,
            )
            if attempt.error_type is not None:
                attempt_span.set_status(Status(StatusCode.ERROR, attempt.error_type))
            attempt_span.end(end_time=attempt_end)
        request_span.end(end_time=end)
