"""The tracer provider, built from the standard OpenTelemetry environment variables.

PRIVATE by default: installing a global provider inside the proxy silently turns on FastAPI's
own per-request tracing (several extra spans per request and a large throughput loss).
Export runs on the batch processor's thread, never on the request path.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from .settings import Settings

log = logging.getLogger("litellm_cost_otel")
INSTRUMENTATION_SCOPE = "litellm_cost_otel"
DEFAULT_SERVICE_NAME = "litellm-proxy"


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip().lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter()
    if protocol not in ("http/protobuf", "http/json"):
        log.warning("litellm_cost_otel: unknown OTLP protocol %r; using grpc", protocol)
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter()
    if protocol == "http/json":
        log.warning("litellm_cost_otel: OTLP http/json is not supported by the Python SDK; using http/protobuf")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
    return HttpSpanExporter()


def exporters_from_env(environ: Mapping[str, str]) -> list[SpanExporter]:
    """OTEL_TRACES_EXPORTER: a comma-separated list of otlp (default), console, none."""
    exporters: list[SpanExporter] = []
    for name in (environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(","):
        name = name.strip().lower()
        if name == "otlp":
            exporters.append(_otlp_exporter(environ))
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name not in ("none", ""):
            log.warning("litellm_cost_otel: unknown OTEL_TRACES_EXPORTER entry %r ignored "
                        "(expected otlp, console or none)", name)
    return exporters


def resource_from_env() -> Resource:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, with service.name defaulting to
    litellm-proxy instead of the SDK's unknown_service."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def build_tracer_provider(settings: Settings, environ: Mapping[str, str] | None = None) -> trace.TracerProvider | None:
    """The provider to create spans with; None when OTEL_SDK_DISABLED=true."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if settings.use_global_provider:
        return trace.get_tracer_provider()
    provider = TracerProvider(resource=resource_from_env())  # flushes and shuts down at exit
    for exporter in exporters_from_env(env):
        provider.add_span_processor(BatchSpanProcessor(exporter))  # OTEL_BSP_* apply
    return provider


_flush_at_proxy_shutdown: list[Callable[[], object]] = []


def flush_at_proxy_shutdown(flush: Callable[[], object]) -> None:
    """Run `flush` when the LiteLLM proxy shuts down.

    uvicorn re-raises SIGTERM after its graceful shutdown, so the process dies by the signal
    and no atexit handler runs: a provider's own flush-at-exit never happens inside the proxy,
    and the last few seconds of spans would be lost on every restart. The proxy's lifespan
    calls `proxy_shutdown_event` by its module-level name at shutdown, after in-flight
    requests have drained; chaining onto it is the one place a flush reliably runs.
    Outside the proxy (in-process use) atexit does its job and nothing is patched.
    """
    _flush_at_proxy_shutdown.append(flush)
    module = sys.modules.get("litellm.proxy.proxy_server")
    original = getattr(module, "proxy_shutdown_event", None)
    if original is None or getattr(original, "litellm_cost_otel_flush", False):
        return

    @functools.wraps(original)
    async def proxy_shutdown_event(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, **kwargs)
        finally:
            for pending in _flush_at_proxy_shutdown:
                try:
                    await asyncio.to_thread(pending)
                except Exception:  # shutdown must go on whatever the exporter does
                    log.warning("litellm_cost_otel: flushing spans at shutdown failed", exc_info=True)

    proxy_shutdown_event.litellm_cost_otel_flush = True  # type: ignore[attr-defined]
    module.proxy_shutdown_event = proxy_shutdown_event  # type: ignore[union-attr]
