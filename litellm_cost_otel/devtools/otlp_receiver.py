"""Real OTLP receivers on 127.0.0.1 (gRPC: traces and metrics; HTTP: traces) that keep what
they receive as plain records."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .waiting import eventually

KIND_NAMES = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""


def received_spans(request: Any) -> list[ReceivedSpan]:
    """Plain spans out of an ExportTraceServiceRequest."""
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(ReceivedSpan(
                    name=span.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    kind=KIND_NAMES.get(span.kind, str(span.kind)),
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    status=STATUS_NAMES.get(span.status.code, str(span.status.code)),
                    status_message=span.status.message,
                    attributes={kv.key: any_value(kv.value) for kv in span.attributes},
                    resource=resource,
                    scope=scope_spans.scope.name,
                ))
    return spans


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Callable[[list[ReceivedSpan]], None], headers: list[dict[str, str]]) -> None:
        self._sink = sink
        self._headers = headers

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC method name)
        self._headers.append(dict(context.invocation_metadata()))
        self._sink(received_spans(request))
        return trace_service_pb2.ExportTraceServiceResponse()


@dataclass
class MetricPoint:
    """The running total of one metric stream (cumulative, or delta points added up)."""

    name: str
    unit: str
    attributes: dict[str, Any]
    service: str
    value: float = 0.0  # sums
    count: int = 0  # histograms
    sum: float = 0.0
    bucket_counts: list[int] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)
    time_ns: int = 0


_DELTA = 1  # AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA


def _merge_point(store: dict[tuple[Any, ...], MetricPoint], service: str, metric: Any) -> None:
    kind = metric.WhichOneof("data")
    if kind not in ("sum", "histogram"):
        return
    data = getattr(metric, kind)
    for point in data.data_points:
        attributes = {kv.key: any_value(kv.value) for kv in point.attributes}
        key = (service, metric.name, tuple(sorted((k, str(v)) for k, v in attributes.items())))
        found = store.setdefault(key, MetricPoint(metric.name, metric.unit, attributes, service))
        delta = data.aggregation_temporality == _DELTA
        if not delta and point.time_unix_nano < found.time_ns:
            continue  # an older cumulative point arriving late
        found.time_ns = max(found.time_ns, point.time_unix_nano)
        if kind == "sum":
            value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
            found.value = found.value + value if delta else value
        else:
            found.bounds = list(point.explicit_bounds)
            counts = list(point.bucket_counts)
            if delta and found.bucket_counts:
                counts = [a + b for a, b in zip(found.bucket_counts, counts, strict=True)]
            found.bucket_counts = counts
            found.count = found.count + point.count if delta else point.count
            found.sum = found.sum + point.sum if delta else point.sum


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink: Callable[[Any], None]) -> None:
        self._sink = sink

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC method name)
        self._sink(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _SpanStore:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.metrics: dict[tuple[Any, ...], MetricPoint] = {}
        self._lock = threading.Lock()

    def _add_metrics(self, request: Any) -> None:
        with self._lock:
            for resource_metrics in request.resource_metrics:
                resource = {kv.key: any_value(kv.value) for kv in resource_metrics.resource.attributes}
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        _merge_point(self.metrics, str(resource.get("service.name", "")), metric)

    def metric_points(self, name: str, service: str | None = None) -> list[MetricPoint]:
        with self._lock:
            return [p for p in self.metrics.values() if p.name == name and service in (None, p.service)]

    def _add(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self.spans.extend(spans)

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()
            self.metrics.clear()

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def wait_for(self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 15.0) -> list[ReceivedSpan]:
        """Poll until predicate(spans) holds; returns the spans either way (callers assert)."""
        return eventually(self.snapshot, predicate, timeout, interval=0.05)


class OtlpReceiver(_SpanStore):
    """OTLP/gRPC. `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT takes. With `metrics=False`
    it serves traces only, as many backends do (metrics calls get UNIMPLEMENTED)."""

    def __init__(self, port: int = 0, metrics: bool = True) -> None:
        super().__init__()
        self.headers: list[dict[str, str]] = []  # gRPC metadata of each export call
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self._add, self.headers), self._server)
        if metrics:
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
                _MetricsService(self._add_metrics), self._server)
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)


class OtlpHttpReceiver(_SpanStore):
    """OTLP/HTTP with protobuf bodies on POST /v1/traces; any other path answers 405, as a
    traces-only backend does."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.split("?")[0] != "/v1/traces":
                    self.send_response(405)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                store._add(received_spans(request))
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpHttpReceiver:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


if __name__ == "__main__":
    import sys

    receiver = OtlpReceiver(int(sys.argv[1]) if len(sys.argv) > 1 else 4317).start()
    print(receiver.endpoint, flush=True)
    threading.Event().wait()
