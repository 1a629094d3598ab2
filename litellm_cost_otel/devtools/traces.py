"""Reads requests back out of received spans: each request span with its attempt spans."""

from __future__ import annotations

from dataclasses import dataclass

from .. import attributes as attrs
from .otlp_receiver import ReceivedSpan

PLUGIN_SCOPE = "litellm_cost_otel"


@dataclass
class RequestTrace:
    request: ReceivedSpan
    attempts: list[ReceivedSpan]

    @property
    def call_id(self) -> str:
        return str(self.request.attributes.get(attrs.CALL_ID, ""))

    @property
    def answering_attempt(self) -> ReceivedSpan | None:
        answered = [span for span in self.attempts if span.status != "ERROR"]
        return answered[-1] if answered else None


def request_traces(spans: list[ReceivedSpan]) -> list[RequestTrace]:
    """Every request span of the plugin, with its attempt spans in attempt order."""
    ours = [span for span in spans if span.scope == PLUGIN_SCOPE]
    by_parent: dict[str, list[ReceivedSpan]] = {}
    for span in ours:
        if attrs.ATTEMPT in span.attributes:
            by_parent.setdefault(span.parent_span_id, []).append(span)
    return [
        RequestTrace(span, sorted(by_parent.get(span.span_id, []), key=lambda s: s.attributes[attrs.ATTEMPT]))
        for span in sorted(ours, key=lambda s: s.start_ns)
        if attrs.CALL_ID in span.attributes
    ]


def traces_for_call(spans: list[ReceivedSpan], call_id: str) -> list[RequestTrace]:
    return [trace for trace in request_traces(spans) if trace.call_id == call_id]
