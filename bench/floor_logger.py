"""The plugin's output at its cheapest, a floor for `--configs none,floor,plugin`: the same two
spans with the same attributes as the plugin's default (ids, costs and times varying per
request) and the same three histogram recordings, through the plugin's own providers and
span encoder, emitted from the success event alone with none of the plugin's other work (no
other hooks, no records, no tracker, no counters). What producing that output with the SDK
costs, however cheaply the hooks' arguments were read.

The attribute sets come from the plugin's own mapper, once, for one plain answered request
(`template`), so they stay the plugin's; each request only fills in its own values."""

from __future__ import annotations

import uuid
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from litellm_cost_otel import attributes as a
from litellm_cost_otel import metrics
from litellm_cost_otel.model import Attempt, Attribution, Request, Usage
from litellm_cost_otel.readers import time_ns_of
from litellm_cost_otel.settings import Settings
from litellm_cost_otel.telemetry import build_meter_provider, build_tracer_provider


def template() -> Request:
    """One plain answered request to `fast`, as the plugin records it."""
    attempt = Attempt(number=1, start_ns=0, end_ns=1, model_group="fast",
                      deployment_model="mistral/mistral-small-latest", provider="mistral",
                      api_base="https://api.mistral.ai/v1", cost_usd=1e-6, usage=Usage(10, 20, 30),
                      finish_reasons=("stop",), response_id="chatcmpl-0")
    return Request(call_id="call-0", received_ns=0, end_ns=1, model_group="fast", requested_model="fast",
                   attempts=[attempt], attribution=Attribution(team_alias="payments"))


class OutputFloorLogger(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        settings = Settings()  # the defaults: OpenInference twins on, as the plugin's default
        tracer_provider = build_tracer_provider(settings)
        meter_provider = build_meter_provider(settings)
        assert tracer_provider is not None and meter_provider is not None, "set OTEL_*_EXPORTER=otlp"
        self._tracer = tracer_provider.get_tracer("bench.floor")
        meter = meter_provider.get_meter("bench.floor")
        self._tokens = meter.create_histogram(metrics.TOKEN_USAGE,
                                              explicit_bucket_boundaries_advisory=metrics.TOKEN_BUCKETS)
        self._duration = meter.create_histogram(metrics.OPERATION_DURATION,
                                                explicit_bucket_boundaries_advisory=metrics.SECONDS_BUCKETS)
        request = template()
        [attempt] = request.attempts
        self._request_name, self._attempt_name = a.request_span_name(request), a.attempt_span_name(attempt)
        self._request_attributes = a.request_attributes(request, settings.attribution, settings.openinference)
        self._attempt_attributes = a.attempt_attributes(attempt, settings.openinference)
        self._dimensions = {a.GEN_AI_OPERATION_NAME: attempt.operation,
                            a.GEN_AI_PROVIDER_NAME: a.gen_ai_provider(attempt.provider),
                            a.GEN_AI_REQUEST_MODEL: attempt.request_model, a.MODEL_GROUP: attempt.model_group}
        self._number = 0

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        logged = kwargs.get("standard_logging_object") or {}
        start, end = time_ns_of(start_time) or 0, time_ns_of(end_time) or 0
        cost = float(kwargs.get("response_cost") or 0.0)
        prompt, completion = int(logged.get("prompt_tokens") or 0), int(logged.get("completion_tokens") or 0)
        self._number += 1
        request = self._tracer.start_span(self._request_name, kind=SpanKind.SERVER, start_time=start, attributes={
            **self._request_attributes, a.CALL_ID: f"call-{self._number}", a.COST_USD: cost,
            a.COST_MICRO_USD: round(cost * 1e6), a.LATENCY_MS: (end - start) / 1e6})
        attempt = self._tracer.start_span(
            self._attempt_name, context=trace.set_span_in_context(request), kind=SpanKind.CLIENT,
            start_time=start, attributes={
                **self._attempt_attributes, a.GEN_AI_USAGE_COST_AMOUNT: cost, a.LLM_COST_TOTAL: cost,
                a.GEN_AI_RESPONSE_ID: f"chatcmpl-{uuid.uuid4()}", a.GEN_AI_USAGE_INPUT_TOKENS: prompt,
                a.LLM_TOKEN_COUNT_PROMPT: prompt, a.GEN_AI_USAGE_OUTPUT_TOKENS: completion,
                a.LLM_TOKEN_COUNT_COMPLETION: completion, a.LLM_TOKEN_COUNT_TOTAL: prompt + completion})
        attempt.end(end_time=end)
        request.end(end_time=end)
        self._duration.record((end - start) / 1e9, self._dimensions)
        self._tokens.record(prompt, {**self._dimensions, a.GEN_AI_TOKEN_TYPE: "input"})
        self._tokens.record(completion, {**self._dimensions, a.GEN_AI_TOKEN_TYPE: "output"})


proxy_handler_instance = OutputFloorLogger()
