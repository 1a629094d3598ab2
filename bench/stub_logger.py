"""The smallest useful span plugin: one span per request, a few attributes, from the success
event, on a private TracerProvider with the SDK's batch processor and OTLP/gRPC exporter, no
metrics. What any SDK-based plugin pays at least (`--configs none,stub,plugin`)."""

from __future__ import annotations

from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


class OneSpanLogger(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self._tracer = provider.get_tracer("bench.stub")

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        logged = kwargs.get("standard_logging_object") or {}
        span = self._tracer.start_span("litellm.request", start_time=int(start_time.timestamp() * 1e9), attributes={
            "litellm.model_group": str(logged.get("model_group")),
            "llm.usage.cost_usd": float(kwargs.get("response_cost") or 0.0),
            "gen_ai.usage.input_tokens": int(logged.get("prompt_tokens") or 0),
            "gen_ai.usage.output_tokens": int(logged.get("completion_tokens") or 0),
        })
        span.end(end_time=int(end_time.timestamp() * 1e9))


proxy_handler_instance = OneSpanLogger()
