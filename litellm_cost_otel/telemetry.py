"""Tracer and meter providers, built from the standard OpenTelemetry environment variables.

PRIVATE by default: installing a global provider inside the proxy silently turns on FastAPI's
own per-request tracing (several extra spans per request and a large throughput loss).
Export runs on the SDK's batch/periodic threads, never on the request path.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv.schemas import Schemas

from . import __version__
from .encoding import CachingOTLPSpanExporter, EncodedSpan, SpanEncoder, early_encoding_available
from .histograms import OwnMeterProvider
from .settings import Settings
from .spans import OwnTracerProvider

log = logging.getLogger("litellm_cost_otel")
INSTRUMENTATION_SCOPE = "litellm_cost_otel"
# The semantic conventions release the GenAI and general names come from (the package's newest).
SCHEMA_URL = Schemas.V1_44_0.value
SCOPE = InstrumentationScope(INSTRUMENTATION_SCOPE, __version__, SCHEMA_URL)
DEFAULT_SERVICE_NAME = "litellm-proxy"
DropCounter = Callable[[int, str], None]

# (signal, protocol) -> the OTLP exporter class; each reads its own OTEL_EXPORTER_OTLP_* settings.
_OTLP_EXPORTERS = {
    ("traces", "grpc"): ("litellm_cost_otel.encoding", "CachingOTLPSpanExporter"),
    ("traces", "http/protobuf"): ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
    ("metrics", "grpc"): ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter"),
    ("metrics", "http/protobuf"): ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
}
_CONSOLE_EXPORTERS = {"traces": ConsoleSpanExporter, "metrics": ConsoleMetricExporter}


def _otlp_exporter(signal: str, environ: Mapping[str, str]) -> Any:
    protocol = (environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip().lower()
    if protocol == "http/json":
        log.warning("litellm_cost_otel: OTLP http/json is not supported by the Python SDK; using http/protobuf")
        protocol = "http/protobuf"
    if (signal, protocol) not in _OTLP_EXPORTERS:
        log.error("litellm_cost_otel: unknown OTLP protocol %r for %s (expected grpc or http/protobuf); using grpc",
                  protocol, signal)
        protocol = "grpc"
    module, name = _OTLP_EXPORTERS[(signal, protocol)]
    return getattr(importlib.import_module(module), name)()


def exporters_from_env(environ: Mapping[str, str], signal: str = "traces") -> list[Any]:
    """OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER: comma-separated otlp (default), console, none."""
    variable = f"OTEL_{signal.upper()}_EXPORTER"
    exporters: list[Any] = []
    for name in (environ.get(variable) or "otlp").split(","):
        name = name.strip().lower()
        if name == "otlp":
            exporters.append(_otlp_exporter(signal, environ))
        elif name == "console":
            exporters.append(_CONSOLE_EXPORTERS[signal]())
        elif name not in ("none", ""):
            log.error("litellm_cost_otel: unknown %s entry %r ignored (expected otlp, console or none)",
                      variable, name)
    return exporters


def resource_from_env() -> Resource:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, with service.name defaulting to
    litellm-proxy instead of the SDK's unknown_service."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


class RateLimitedLog:
    """At most one log line per message key per interval, with a count of those suppressed."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def __call__(self, level: int, key: str, message: str, *args: Any, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            last, suppressed = self._last.get(key, (float("-inf"), 0))
            if now - last < self._interval_s:
                self._last[key] = (last, suppressed + 1)
                return
            if len(self._last) > 1000:  # bounded, even under a storm of distinct errors
                self._last.clear()
            self._last[key] = (now, 0)
        if suppressed:
            message += f" ({suppressed} similar messages suppressed)"
        self._logger.log(level, message, *args, exc_info=exc_info)


def _encodable(span: ReadableSpan | bytes) -> bool:
    if isinstance(span, bytes):
        return True  # encoded already
    try:
        encode_spans([span]).SerializeToString()
    except Exception:  # whatever the encoder rejects, this span cannot be exported
        return False
    return True


class _CountingExporter(SpanExporter):
    """Counts the spans of batches the backend did not take (collector down, rejected), and
    keeps one span the encoder rejects from failing its whole batch: the rest are exported,
    the rejected ones counted as dropped, with a rate-limited warning."""

    def __init__(self, inner: SpanExporter, on_drop: DropCounter) -> None:
        self._inner = inner
        self._on_drop = on_drop
        self._log = RateLimitedLog(log)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception as error:  # an encoder error would otherwise lose the batch uncounted
            exportable = [span for span in spans if _encodable(span)]
            if len(exportable) in (0, len(spans)):  # no single span's fault: the batch is lost
                lost, result = len(spans), SpanExportResult.FAILURE
            else:
                lost, result = len(spans) - len(exportable), self.export(exportable)
            self._on_drop(lost, "export_failed")
            self._log(logging.WARNING, f"export:{type(error).__name__}",
                      "litellm_cost_otel: export raised %s (%s); %d of %d spans are lost and counted in "
                      "litellm_cost_otel.spans.dropped", type(error).__name__, error, lost, len(spans))
            return result
        if result is not SpanExportResult.SUCCESS:
            self._on_drop(len(spans), "export_failed")
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _CountingBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor that counts the spans it drops because its queue is full."""

    def __init__(self, exporter: SpanExporter, on_drop: DropCounter) -> None:
        super().__init__(_CountingExporter(exporter, on_drop))
        self._on_drop = on_drop
        # The SDK drops the oldest queued span silently (a log line) when the queue is full.
        batch_processor = getattr(self, "_batch_processor", None)  # (the SDK's, private)
        self._queue = getattr(batch_processor, "_queue", None)
        self._emit = getattr(batch_processor, "emit", None)

    def on_end(self, span: ReadableSpan | EncodedSpan) -> None:  # (an EncodedSpan: see encoding.py)
        # Not locked against the export thread: a span it takes in the same instant can be
        # counted as dropped although it leaves. A health signal, not an account.
        queue = self._queue
        if queue is not None and queue.maxlen is not None and len(queue) >= queue.maxlen:
            self._on_drop(1, "queue_full")
        if type(span) is EncodedSpan and self._emit is not None:
            # Queued as plain bytes, which the garbage collector does not track: an EncodedSpan
            # (an instance of a class) it does, and waiting up to 5 s in the queue it would reach
            # the oldest generation and bring the proxy's next full collection nearer.
            self._emit(bytes(span))
            return
        super().on_end(span)  # type: ignore[arg-type]


def build_tracer_provider(settings: Settings, environ: Mapping[str, str] | None = None,
                          on_drop: DropCounter | None = None) -> trace.TracerProvider | None:
    """The provider to create spans with; None when OTEL_SDK_DISABLED=true."""
    env = os.environ if environ is None else environ
    if _disabled(env):
        return None
    if settings.use_global_provider:
        return trace.get_tracer_provider()
    provider = OwnTracerProvider(resource=resource_from_env())  # flushes and shuts down at exit
    exporters = exporters_from_env(env, "traces")
    for exporter in exporters:
        # OTEL_BSP_* apply.
        provider.add_span_processor(_CountingBatchSpanProcessor(exporter, on_drop or (lambda count, reason: None)))
    # Spans are encoded on the request path when every exporter takes them so (OTLP/gRPC, the default).
    if exporters and early_encoding_available() and all(isinstance(exporter, CachingOTLPSpanExporter)
                                                        for exporter in exporters):
        provider.span_encoder = SpanEncoder(provider.resource, SCOPE)
        for exporter in exporters:
            exporter.span_encoder = provider.span_encoder
    return provider


# Answers by which an endpoint says it takes no OTLP metrics at all (a traces-only backend such
# as Phoenix, many vendors' trace intakes): retrying every interval cannot help.
_REFUSING_HTTP_STATUSES = (404, 405, 501)
_REFUSING_GRPC_CODE = "UNIMPLEMENTED"


class _AnswerWatch:
    """Stands in for an OTLP metric exporter's client (the gRPC stub's `Export`, the HTTP
    client's `export`) to see the endpoint's answer, which the exporter only logs."""

    def __init__(self, client: Any, guard: _MetricsRefusalGuard) -> None:
        self._client = client
        self._guard = guard

    def Export(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 (the gRPC stub's method)
        try:
            return self._client.Export(*args, **kwargs)
        except Exception as error:
            code = getattr(getattr(error, "code", lambda: None)(), "name", None)
            if code == _REFUSING_GRPC_CODE:
                self._guard.refusal = f"gRPC status {code}"
            raise

    def export(self, *args: Any, **kwargs: Any) -> Any:
        result = self._client.export(*args, **kwargs)
        status = getattr(result, "status_code", None)
        if status in _REFUSING_HTTP_STATUSES:
            self._guard.refusal = f"HTTP {status}"
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class _MetricsRefusalGuard(MetricExporter):
    """An OTLP metric exporter that stops, with one warning naming the fix, when the endpoint
    answers that it takes no metrics, instead of failing (and logging) every interval."""

    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(preferred_temporality=getattr(inner, "_preferred_temporality", None),
                         preferred_aggregation=getattr(inner, "_preferred_aggregation", None))
        self._inner = inner
        self.refusal: str | None = None
        self.stopped = False

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        if self.stopped:
            return MetricExportResult.SUCCESS  # dropped on purpose: the endpoint takes none
        client = getattr(self._inner, "_client", None)
        if client is not None and not isinstance(client, _AnswerWatch):  # (the gRPC exporter remakes it)
            self._inner._client = _AnswerWatch(client, self)  # type: ignore[attr-defined]
        result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result is not MetricExportResult.SUCCESS and self.refusal is not None:
            self.stopped = True
            log.warning("litellm_cost_otel: the OTLP endpoint %s takes no metrics (%s): metrics export is "
                        "stopped. Send metrics to a Collector (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) or turn them "
                        "off with OTEL_METRICS_EXPORTER=none; traces are unaffected.",
                        getattr(self._inner, "_endpoint", "?"), self.refusal)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.stopped or self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def build_meter_provider(settings: Settings, environ: Mapping[str, str] | None = None) -> metrics.MeterProvider | None:
    """The provider to record metrics with; None when metrics are off (OTEL_METRICS_EXPORTER=none)."""
    env = os.environ if environ is None else environ
    if _disabled(env):
        return None
    if settings.use_global_provider:
        return metrics.get_meter_provider()
    exporters = [exporter if isinstance(exporter, ConsoleMetricExporter) else _MetricsRefusalGuard(exporter)
                 for exporter in exporters_from_env(env, "metrics")]
    if not exporters:
        return None
    # A periodic reader per exporter (OTEL_METRIC_EXPORT_INTERVAL / _TIMEOUT apply), adding the plugin's histograms.
    return OwnMeterProvider(exporters, resource_from_env(), SCOPE)


_flush_at_proxy_shutdown: list[Callable[[], object]] = []


def flush_at_proxy_shutdown(flush: Callable[[], object]) -> None:
    """Run `flush` when the LiteLLM proxy shuts down.

    uvicorn re-raises SIGTERM after its graceful shutdown, so the process dies by the signal
    and no atexit handler runs: a provider's own flush-at-exit never happens inside the proxy,
    and the last few seconds of telemetry would be lost on every restart. The proxy's lifespan
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
                    log.warning("litellm_cost_otel: flushing telemetry at shutdown failed", exc_info=True)

    proxy_shutdown_event.litellm_cost_otel_flush = True  # type: ignore[attr-defined]
    module.proxy_shutdown_event = proxy_shutdown_event  # type: ignore[union-attr]
