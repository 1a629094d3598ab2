"""Telemetry set-up from the standard OTEL_* variables, exporting for real."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from litellm_cost_otel import attributes as a
from litellm_cost_otel.devtools.otlp_receiver import OtlpHttpReceiver, OtlpReceiver
from litellm_cost_otel.devtools.traces import request_traces
from litellm_cost_otel.settings import Settings
from litellm_cost_otel.telemetry import build_tracer_provider, exporters_from_env

# One in-process Router call through the plugin, in a fresh interpreter so that each
# configuration starts from a clean process, as a proxy worker does.
ONE_CALL = textwrap.dedent("""
    import litellm
    from litellm_cost_otel import CostOtelLogger
    plugin = CostOtelLogger()
    litellm.callbacks = [plugin]
    router = litellm.Router(model_list=[{"model_name": "fast", "litellm_params": {
        "model": "mistral/mistral-small-latest", "api_key": "k", "mock_response": "hi"}}])
    router.completion(model="fast", messages=[{"role": "user", "content": "hello"}])
    import time; time.sleep(0.5)
    plugin.force_flush()
""")


def run_one_call(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os
    full_env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OTEL_METRICS_EXPORTER": "none", **env}
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_EXPORTER"):
        if name not in env:
            full_env.pop(name, None)
    return subprocess.run([sys.executable, "-c", ONE_CALL], env=full_env, capture_output=True, text=True,
                          timeout=120, check=True)


def test_otlp_http_protobuf() -> None:
    http_receiver = OtlpHttpReceiver().start()
    try:
        run_one_call({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                      "OTEL_EXPORTER_OTLP_ENDPOINT": http_receiver.endpoint})
        traces = request_traces(http_receiver.wait_for(lambda spans: len(spans) >= 2))
        assert len(traces) == 1 and traces[0].request.attributes[a.COST_USD] > 0
    finally:
        http_receiver.stop()


def test_otlp_grpc_with_headers_and_traces_endpoint() -> None:
    grpc_receiver = OtlpReceiver().start()
    try:
        run_one_call({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": grpc_receiver.endpoint,
                      "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",  # the traces endpoint wins
                      "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=team-a,authorization=Bearer%20t0ken"})
        traces = request_traces(grpc_receiver.wait_for(lambda spans: len(spans) >= 2))
        assert len(traces) == 1
        assert grpc_receiver.headers[0]["x-tenant"] == "team-a"
        assert grpc_receiver.headers[0]["authorization"] == "Bearer t0ken"
    finally:
        grpc_receiver.stop()


def test_console_exporter_prints_the_spans() -> None:
    result = run_one_call({"OTEL_TRACES_EXPORTER": "console"})
    assert '"litellm.request fast"' in result.stdout
    assert a.COST_USD in result.stdout


def test_none_exporter_exports_nothing_and_unknown_entries_are_reported(caplog: Any) -> None:
    assert exporters_from_env({"OTEL_TRACES_EXPORTER": "none"}) == []
    exporters = exporters_from_env({"OTEL_TRACES_EXPORTER": "console,zipkin-typo"})
    assert [type(e) for e in exporters] == [ConsoleSpanExporter]
    assert "zipkin-typo" in caplog.text
    result = run_one_call({"OTEL_TRACES_EXPORTER": "none"})
    assert a.COST_USD not in result.stdout


def test_the_provider_is_private_unless_asked_for_the_global_one() -> None:
    global_before = trace.get_tracer_provider()
    private = build_tracer_provider(Settings(), {"OTEL_TRACES_EXPORTER": "none"})
    assert private is not None and private is not global_before
    assert trace.get_tracer_provider() is global_before  # nothing installed globally
    assert build_tracer_provider(Settings(use_global_provider=True), {}) is global_before
    assert build_tracer_provider(Settings(), {"OTEL_SDK_DISABLED": "true"}) is None


def test_default_service_name_and_resource_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    provider = build_tracer_provider(Settings(), {"OTEL_TRACES_EXPORTER": "none"})
    assert provider.resource.attributes["service.name"] == "litellm-proxy"
    assert provider.resource.attributes["deployment.environment"] == "staging"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-eu")
    provider = build_tracer_provider(Settings(), {"OTEL_TRACES_EXPORTER": "none"})
    assert provider.resource.attributes["service.name"] == "gateway-eu"


def test_dropped_spans_are_counted_in_the_health_metric() -> None:
    """Collector down and a tiny queue: requests are unaffected, drops are counted and exported."""
    from litellm_cost_otel import metrics as m

    metrics_receiver = OtlpReceiver().start()
    script = ONE_CALL.replace(
        'router.completion(model="fast", messages=[{"role": "user", "content": "hello"}])',
        'for _ in range(30): router.completion(model="fast", messages=[{"role": "user", "content": "hello"}])')
    try:
        import os
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OTEL_TRACES_EXPORTER": "otlp",
               "OTEL_METRICS_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "health-check",
               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9",  # nothing listens there
               "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1", "OTEL_BSP_MAX_QUEUE_SIZE": "4",
               "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2", "OTEL_BSP_SCHEDULE_DELAY": "50",
               "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": metrics_receiver.endpoint}
        subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180,
                       check=True)
        dropped = {p.attributes[a.DROP_REASON]: p.value for p in metrics_receiver.metric_points(m.SPANS_DROPPED)}
        assert dropped.get("queue_full", 0) > 0
        assert dropped.get("export_failed", 0) > 0
        assert dropped["queue_full"] <= 60 and dropped["export_failed"] <= 60  # 30 requests, 2 spans each
        requests = sum(p.value for p in metrics_receiver.metric_points(m.REQUESTS))
        assert requests == 30  # the requests themselves were all recorded
    finally:
        metrics_receiver.stop()
