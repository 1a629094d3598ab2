"""Faults around the plugin, on the real proxy: the collector down, hanging or overflowing,
clients going away. Every request must still succeed, at its normal speed, with its body."""

from __future__ import annotations

import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from litellm_cost_otel import attributes as a
from litellm_cost_otel import metrics as m
from litellm_cost_otel.devtools.gateway import PLUGIN, gateway_config, proxy_env, wait_for_request, write_config
from litellm_cost_otel.devtools.otlp_receiver import OtlpHttpReceiver, OtlpReceiver
from litellm_cost_otel.devtools.proxy import LiteLLMProxy, free_port
from litellm_cost_otel.devtools.waiting import eventually

# An export on the request path would take the export timeout; latencies are judged against a
# healthy proxy's, measured in the same test, request by request, under the same load.
EXPORT_TIMEOUT_S = "3"


class SilentServer:
    """Accepts TCP connections and never answers: a collector that hangs."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._socket.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                self._held.append(self._socket.accept()[0])
            except OSError:
                continue

    def stop(self) -> None:
        self._stopped.set()
        for held in self._held:
            held.close()
        self._socket.close()


def proxy_with(tmp: Path, env: dict[str, str]) -> LiteLLMProxy:
    return LiteLLMProxy(write_config(tmp / "config.yaml", gateway_config([PLUGIN])), env, log_path=tmp / "proxy.log")


def _timed_chat(proxy: LiteLLMProxy, label: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = proxy.chat("fast", f"{label} {uuid.uuid4().hex}")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the fast model."
    return response, elapsed


def assert_served_normally(proxy: LiteLLMProxy, count: int, healthy: LiteLLMProxy) -> list[httpx.Response]:
    """`count` requests, each answered with its body and as fast as the same request to a
    proxy with a healthy collector, sent right before it (the baseline)."""
    _timed_chat(proxy, "warm-up")  # a freshly started proxy's first request is not what is judged
    responses, latencies, baseline = [], [], []
    for index in range(count):
        baseline.append(_timed_chat(healthy, f"baseline {index}")[1])
        response, elapsed = _timed_chat(proxy, f"fault test {index}")
        responses.append(response)
        latencies.append(elapsed)
    assert statistics.median(latencies) <= 2 * statistics.median(baseline) + 0.05, (latencies, baseline)
    assert max(latencies) <= max(baseline) + 1.0, (latencies, baseline)  # far below the 3 s export timeout
    return responses


def assert_nothing_raised_inside(proxy: LiteLLMProxy) -> None:
    log = proxy.log_path.read_text(errors="replace")
    assert "litellm_cost_otel" not in log or "Traceback" not in log.split("litellm_cost_otel", 1)[1][:2000]
    assert "the request is unaffected" not in log  # the plugin's own contained-hook-error line


def test_collector_down_from_the_start(tmp_path: Path, receiver: Any, fake_llm: Any,
                                       healthy_proxy: LiteLLMProxy) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = proxy_env(receiver, fake_llm, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=dead,
                    OTEL_EXPORTER_OTLP_TIMEOUT=EXPORT_TIMEOUT_S)
    with proxy_with(tmp_path, env) as proxy:
        assert_served_normally(proxy, 20, healthy_proxy)
        stop_started = time.monotonic()
    assert time.monotonic() - stop_started < 30  # shutdown's flush attempt is bounded too
    assert_nothing_raised_inside(proxy)


def test_collector_down_mid_run_and_back(tmp_path: Path, fake_llm: Any, healthy_proxy: LiteLLMProxy) -> None:
    port = free_port()
    first = OtlpReceiver(port).start()
    env = proxy_env(first, fake_llm, OTEL_EXPORTER_OTLP_TIMEOUT=EXPORT_TIMEOUT_S)
    with proxy_with(tmp_path, env) as proxy:
        before = assert_served_normally(proxy, 3, healthy_proxy)
        wait_for_request(first, before[-1].headers["x-litellm-call-id"], attempts=1)
        first.stop()
        assert_served_normally(proxy, 10, healthy_proxy)  # nobody listening
        second = OtlpReceiver(port).start()
        try:
            after = assert_served_normally(proxy, 3, healthy_proxy)
            for response in after:  # spans after the recovery arrive
                (trace,) = wait_for_request(second, response.headers["x-litellm-call-id"], attempts=1,
                                            timeout=30)
                assert trace.request.attributes[a.COST_USD] == pytest.approx(
                    float(response.headers["x-litellm-response-cost"]), rel=1e-9)
        finally:
            second.stop()
    assert_nothing_raised_inside(proxy)


@pytest.fixture
def silent_collector() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.stop()


def test_hanging_collector_and_a_full_queue(tmp_path: Path, receiver: Any, fake_llm: Any,
                                            silent_collector: SilentServer, healthy_proxy: LiteLLMProxy) -> None:
    """Exports time out (bounded), the tiny queue overflows, drops are counted in the health
    metric (exported to a working metrics endpoint), and requests never notice."""
    env = proxy_env(receiver, fake_llm, OTEL_SERVICE_NAME="hanging-collector",
                    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=silent_collector.endpoint,
                    OTEL_EXPORTER_OTLP_TIMEOUT=EXPORT_TIMEOUT_S, OTEL_BSP_MAX_QUEUE_SIZE="4",
                    OTEL_BSP_MAX_EXPORT_BATCH_SIZE="2")
    with proxy_with(tmp_path, env) as proxy:
        assert_served_normally(proxy, 40, healthy_proxy)

        def dropped() -> dict[str, float]:
            return {p.attributes[a.DROP_REASON]: p.value for p in receiver.metric_points(m.SPANS_DROPPED,
                                                                                         "hanging-collector")}

        def requests() -> float:
            return sum(p.value for p in receiver.metric_points(m.REQUESTS, "hanging-collector"))

        eventually(lambda: (dropped().get("queue_full", 0), requests()), lambda seen: seen[0] > 0 and seen[1] >= 41,
                   timeout=20)
        assert dropped().get("queue_full", 0) > 0
        assert requests() == 41  # every request (40 and the warm-up) was still recorded in the metrics
        stop_started = time.monotonic()
    assert time.monotonic() - stop_started < 30
    assert_nothing_raised_inside(proxy)


def test_client_disconnecting_mid_stream_ends_the_spans_and_frees_state(proxy: LiteLLMProxy,
                                                                        receiver: Any) -> None:
    content = f"chunk_delay=0.3 prompt_tokens=4 completion_tokens=6 {uuid.uuid4().hex}"
    body = {"model": "local", "stream": True, "messages": [{"role": "user", "content": content}]}
    with proxy.client.stream("POST", "/v1/chat/completions", json=body) as response:
        call_id = response.headers["x-litellm-call-id"]
        next(response.iter_lines())  # the first chunk, then the client goes away
    (trace,) = wait_for_request(receiver, call_id, attempts=1, timeout=30)
    assert trace.request.end_ns > trace.request.start_ns
    assert trace.attempts[0].end_ns <= trace.request.end_ns
    # Nothing stays tracked: the in-flight gauge drops back to zero.
    def inflight() -> float | None:
        points = receiver.metric_points(m.INFLIGHT, "test-gateway")
        return points[0].value if points else None

    assert eventually(inflight, lambda value: value == 0, timeout=10) == 0


def test_an_unpriced_model_costs_zero_with_a_warning(tmp_path: Path, receiver: Any, fake_llm: Any) -> None:
    config = gateway_config([PLUGIN])
    config["model_list"].append({"model_name": "unpriced", "litellm_params": {
        "model": "openai/some-private-model", "api_base": "os.environ/LOCAL_MODEL_BASE_URL", "api_key": "k"}})
    config["model_list"].append({"model_name": "free", "litellm_params": {  # free on purpose: no warning
        "model": "openai/free-model", "api_base": "os.environ/LOCAL_MODEL_BASE_URL", "api_key": "k",
        "input_cost_per_token": 0, "output_cost_per_token": 0}})
    with LiteLLMProxy(write_config(tmp_path / "config.yaml", config), proxy_env(receiver, fake_llm),
                      log_path=tmp_path / "proxy.log") as proxy:
        responses = [proxy.chat(group, f"hello {uuid.uuid4().hex}") for group in ("unpriced", "free") * 3]
        assert all(r.status_code == 200 for r in responses)
        for response in responses:
            (trace,) = wait_for_request(receiver, response.headers["x-litellm-call-id"], attempts=1)
            assert trace.request.attributes[a.COST_USD] == 0.0
            assert trace.attempts[0].attributes[a.GEN_AI_USAGE_INPUT_TOKENS] == 12
    log = proxy.log_path.read_text()
    assert log.count("litellm has no price for model 'openai/some-private-model'") == 1  # rate-limited
    assert "input_cost_per_token" in log
    assert "no price for model 'openai/free-model'" not in log


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_traces_only_endpoint_stops_the_metrics_export_with_one_warning(
        tmp_path: Path, fake_llm: Any, protocol: str, healthy_proxy: LiteLLMProxy) -> None:
    """Pointed straight at a backend that takes traces only (Phoenix, many vendors), the
    metrics exporter is refused each interval (gRPC UNIMPLEMENTED, HTTP 405): one warning
    naming the fix, then no more attempts; traces keep flowing."""
    traces_only = (OtlpReceiver(metrics=False) if protocol == "grpc" else OtlpHttpReceiver()).start()
    env = proxy_env(traces_only.endpoint, fake_llm, OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                    OTEL_METRIC_EXPORT_INTERVAL="300")
    try:
        with proxy_with(tmp_path, env) as proxy:
            for response in assert_served_normally(proxy, 3, healthy_proxy):
                wait_for_request(traces_only, response.headers["x-litellm-call-id"], attempts=1)
            time.sleep(3)  # ten export intervals
            later = assert_served_normally(proxy, 1, healthy_proxy)[0]
            wait_for_request(traces_only, later.headers["x-litellm-call-id"], attempts=1)
    finally:
        traces_only.stop()
    log = proxy.log_path.read_text(errors="replace")
    assert log.count("takes no metrics") == 1
    assert "OTEL_METRICS_EXPORTER=none" in log
    refusals = log.count("UNIMPLEMENTED") if protocol == "grpc" else log.count("Failed to export metrics batch")
    assert 1 <= refusals <= 2  # the SDK's own line for the first refusal (and our warning), no more
    assert_nothing_raised_inside(proxy)
