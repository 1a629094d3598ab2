"""The plugin's output at its cheapest, a floor for `--configs none,floor,plugin`: the same two
spans with the same 33 attributes as the plugin's default (ids, costs and times varying per
request) and the same three histogram recordings, through the plugin's own providers and
span encoder, emitted from the success event alone with none of the plugin's other work (no
other hooks, no records, no tracker, no counters). What producing that output with the SDK
costs, however cheaply the hooks' arguments were read."""

from __future__ import annotations

import uuid
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from litellm_cost_otel import metrics
from litellm_cost_otel.settings import Settings
from litellm_cost_otel.telemetry import build_meter_provider, build_tracer_provider


def _ns(moment: Any) -> int:
    return int(moment.timestamp() * 1e9)


class OutputFloorLogger(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        settings = Settings()
        tracer_provider = build_tracer_provider(settings)
        meter_provider = build_meter_provider(settings)
        assert tracer_provider is not None and meter_provider is not None, "set OTEL_*_EXPORTER=otlp"
        self._tracer = tracer_provider.get_tracer("bench.floor")
        meter = meter_provider.get_meter("bench.floor")
        self._tokens = meter.create_histogram(metrics.TOKEN_USAGE,
                                              explicit_bucket_boundaries_advisory=metrics.TOKEN_BUCKETS)
        self._duration = meter.create_histogram(metrics.OPERATION_DURATION,
                                                explicit_bucket_boundaries_advisory=metrics.SECONDS_BUCKETS)
        self._number = 0

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        logged = kwargs.get("standard_logging_object") or {}
        start, end = _ns(start_time), _ns(end_time)
        cost = float(kwargs.get("response_cost") or 0.0)
        prompt, completion = int(logged.get("prompt_tokens") or 0), int(logged.get("completion_tokens") or 0)
        self._number += 1
        request = self._tracer.start_span("litellm.request fast", kind=SpanKind.SERVER, start_time=start, attributes={
            "litellm.call_id": f"call-{self._number}", "litellm.attempts": 1, "litellm.fallbacks": 0,
            "llm.usage.cost_usd": cost, "llm.usage.cost_micro_usd": round(cost * 1e6),
            "litellm.model_group": "fast", "litellm.served_model_group": "fast",
            "llm.latency_ms": (end - start) / 1e6, "litellm.team.alias": "payments",
            "openinference.span.kind": "CHAIN"})
        attempt = self._tracer.start_span(
            "chat mistral-small-latest", context=trace.set_span_in_context(request), kind=SpanKind.CLIENT,
            start_time=start, attributes={
                "litellm.attempt": 1, "litellm.fallback_depth": 0, "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "mistral_ai", "gen_ai.usage.cost.amount": cost,
                "gen_ai.usage.cost.currency": "USD", "gen_ai.usage.cost.source": "local",
                "litellm.model_group": "fast", "gen_ai.request.model": "mistral-small-latest",
                "openinference.span.kind": "LLM", "llm.cost.total": cost, "llm.model_name": "mistral-small-latest",
                "llm.provider": "mistralai", "server.address": "api.mistral.ai", "server.port": 443,
                "gen_ai.response.id": f"chatcmpl-{uuid.uuid4()}", "gen_ai.response.finish_reasons": ("stop",),
                "llm.finish_reason": "stop", "gen_ai.usage.input_tokens": prompt, "llm.token_count.prompt": prompt,
                "gen_ai.usage.output_tokens": completion, "llm.token_count.completion": completion,
                "llm.token_count.total": prompt + completion})
        attempt.end(end_time=end)
        request.end(end_time=end)
        dimensions = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "mistral_ai",
                      "gen_ai.request.model": "mistral-small-latest", "litellm.model_group": "fast"}
        self._duration.record((end - start) / 1e9, dimensions)
        self._tokens.record(prompt, {**dimensions, "gen_ai.token.type": "input"})
        self._tokens.record(completion, {**dimensions, "gen_ai.token.type": "output"})



proxy_handler_instance = OutputFloorLogger()
