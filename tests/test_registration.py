"""Registration variants on the real proxy: beside litellm's own "otel" callback in either
order, and with several worker processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from litellm_cost_otel import attributes as a
from litellm_cost_otel.devtools.gateway import PLUGIN, gateway_config, proxy_env, wait_for_request, write_config
from litellm_cost_otel.devtools.proxy import LiteLLMProxy
from litellm_cost_otel.devtools.traces import request_traces

LITELLM_PROXY_SPAN = "Received Proxy Server Request"


@pytest.fixture(scope="module", params=["plugin-first", "otel-first"])
def proxy_with_litellm_otel(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                            receiver: Any, fake_llm: Any) -> Iterator[LiteLLMProxy]:
    callbacks = [PLUGIN, "otel"] if request.param == "plugin-first" else ["otel", PLUGIN]
    config = write_config(tmp_path_factory.mktemp(request.param) / "config.yaml", gateway_config(callbacks))
    # litellm's own callback reads OTEL_EXPORTER_OTLP_PROTOCOL (its default is the console).
    env = proxy_env(receiver, fake_llm, OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
                    OTEL_SERVICE_NAME=f"gateway-{request.param}")
    with LiteLLMProxy(config, env) as running:
        yield running


def test_beside_litellm_otel_callback_parents_on_the_proxy_span(proxy_with_litellm_otel: LiteLLMProxy,
                                                                receiver: Any) -> None:
    trace_id, client_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    for group, attempts in (("fast", 1), ("fast-outage", 3)):
        response = proxy_with_litellm_otel.chat(group, f"hello {uuid.uuid4().hex}",
                                                headers={"traceparent": f"00-{trace_id}-{client_span}-01"})
        assert response.status_code == 200
        call_id = response.headers["x-litellm-call-id"]
        traces = wait_for_request(receiver, call_id, attempts)
        assert len(traces) == 1, "exactly one request span of ours, whatever the callback order"
        trace = traces[0]
        assert len(trace.attempts) == attempts
        assert trace.request.attributes[a.COST_USD] == pytest.approx(
            float(response.headers["x-litellm-response-cost"]), rel=1e-9)
        parent_id = trace.request.parent_span_id
        spans = receiver.wait_for(lambda spans, parent_id=parent_id: any(s.span_id == parent_id for s in spans))
        parents = [s for s in spans if s.span_id == parent_id]
        assert len(parents) == 1
        assert parents[0].name == LITELLM_PROXY_SPAN and parents[0].scope != "litellm_cost_otel"
        assert trace.request.kind == "INTERNAL"
        assert trace.request.trace_id == trace_id  # litellm's span continued the client's trace


def test_two_workers(tmp_path: Path, receiver: Any, fake_llm: Any) -> None:
    config = write_config(tmp_path / "config.yaml", gateway_config([PLUGIN]))
    with LiteLLMProxy(config, proxy_env(receiver, fake_llm), num_workers=2) as running:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda i: running.chat("fast", f"worker test {i} {uuid.uuid4().hex}"),
                                      range(16)))
    # Stopping the proxy flushed every worker's batch processor.
    for response in responses:
        assert response.status_code == 200
        traces = wait_for_request(receiver, response.headers["x-litellm-call-id"], attempts=1)
        assert len(traces) == 1
        assert traces[0].request.attributes[a.COST_USD] == pytest.approx(
            float(response.headers["x-litellm-response-cost"]), rel=1e-9)


def test_spans_are_flushed_when_the_proxy_stops(tmp_path: Path, receiver: Any, fake_llm: Any) -> None:
    """uvicorn re-raises SIGTERM after its graceful shutdown (no atexit handlers run): the
    plugin must flush during the proxy's shutdown or lose the last batch on every restart."""
    config = write_config(tmp_path / "config.yaml", gateway_config([PLUGIN]))
    env = proxy_env(receiver, fake_llm, OTEL_BSP_SCHEDULE_DELAY="600000")  # only a flush exports
    with LiteLLMProxy(config, env) as running:
        responses = [running.chat("fast", f"flush test {uuid.uuid4().hex}"),
                     running.chat("local", f"status=503 flush test {uuid.uuid4().hex}")]
        call_ids = [r.headers["x-litellm-call-id"] for r in responses]
        assert not any(t.call_id in call_ids for t in request_traces(receiver.snapshot()))
    for call_id, attempts in zip(call_ids, (1, 2), strict=True):
        assert len(wait_for_request(receiver, call_id, attempts, timeout=5)) == 1
