"""What a client controls (the request body, header values, the model name, the call id) never
decides a span's times, its parent, its team, its name, nor whether another request's spans
arrive: tried on the real proxy, on the chat route and the routes where the body's `metadata`
is the client's own (`/v1/responses`, `/v1/messages`)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from litellm_cost_otel import attributes as a
from litellm_cost_otel import metrics as m
from litellm_cost_otel.devtools.gateway import TEAM_KEYS, wait_for_request
from litellm_cost_otel.devtools.proxy import LiteLLMProxy
from litellm_cost_otel.devtools.traces import RequestTrace

SERVICE = "routes-gateway"
OTHER_TRACE = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
ROUTES = {"/v1/chat/completions": "local", "/v1/responses": "local", "/v1/messages": "claude-local"}


def post(proxy: LiteLLMProxy, route: str, team: str = "search", model: str | None = None,
         headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    text = f"prompt_tokens=5 completion_tokens=3 {uuid.uuid4().hex}"
    payload: dict[str, Any] = {"model": model or ROUTES[route], **body}
    if route == "/v1/responses":
        payload["input"] = text
    else:
        payload["messages"] = [{"role": "user", "content": text}]
        payload.setdefault("max_tokens", 32)
    return proxy.client.post(route, json=payload, headers={"Authorization": f"Bearer {TEAM_KEYS[team]}",
                                                           **(headers or {})})


def trace_of(receiver: Any, response: httpx.Response, attempts: int = 1) -> RequestTrace:
    (trace,) = wait_for_request(receiver, response.headers["x-litellm-call-id"], attempts)
    return trace


def assert_no_hook_errors(proxy: LiteLLMProxy, receiver: Any) -> None:
    time.sleep(1.2)  # two metric export intervals
    assert sum(p.value for p in receiver.metric_points(m.HOOK_ERRORS, SERVICE)) == 0
    assert sum(p.value for p in receiver.metric_points(m.SPANS_DROPPED, SERVICE)) == 0
    assert "the request is unaffected" not in proxy.log_path.read_text(errors="replace")


FORGED_TIMES = [4102444800, 1e11, 1e300, -5, "yesterday"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_client_cannot_move_its_spans(routes_proxy: LiteLLMProxy, receiver: Any, route: str) -> None:
    for forged in FORGED_TIMES:
        before = time.time_ns()
        response = post(routes_proxy, route, metadata={"litellm_received_at": forged})
        after = time.time_ns()
        assert response.status_code == 200, response.text[:300]
        request = trace_of(receiver, response).request
        assert before <= request.start_ns <= request.end_ns <= after, forged
        assert 0 < request.attributes[a.LATENCY_MS] < (after - before) / 1e6
        assert a.CLOCK_ADJUSTED not in request.attributes  # the body's time was never read
    assert_no_hook_errors(routes_proxy, receiver)


@pytest.mark.parametrize("route", ROUTES)
def test_a_client_cannot_spoof_its_team_or_key(routes_proxy: LiteLLMProxy, receiver: Any, route: str) -> None:
    forged = {"user_api_key_team_alias": "payments", "user_api_key_team_id": "payments-id",
              "user_api_key_alias": "payments-service-key", "user_api_key_org_id": "someone-else",
              "team_alias": "payments", "team_id": "payments-id"}
    response = post(routes_proxy, route, team="search", metadata=forged)
    request = trace_of(receiver, response).request.attributes
    assert request[a.TEAM_ALIAS] == "search" and request[a.TEAM_ID] == "search-id"
    assert request[a.KEY_ALIAS] == "search-service-key" and request[a.ORG_ID] == "acme"


@pytest.mark.parametrize("route", ROUTES)
def test_a_client_cannot_choose_its_parent_through_the_body(routes_proxy: LiteLLMProxy, receiver: Any,
                                                             route: str) -> None:
    body_only = post(routes_proxy, route, metadata={"headers": {"traceparent": OTHER_TRACE}})
    request = trace_of(receiver, body_only).request
    assert request.kind == "SERVER" and request.parent_span_id == "" and request.trace_id != "c" * 32
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    both = post(routes_proxy, route, headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
                metadata={"headers": {"traceparent": OTHER_TRACE}})
    request = trace_of(receiver, both).request
    assert (request.kind, request.trace_id, request.parent_span_id) == ("SERVER", trace_id, parent_id)


def test_a_hostile_request_costs_no_other_request_its_spans(routes_proxy: LiteLLMProxy, receiver: Any) -> None:
    """Values an encoder rejects, sent beside ordinary traffic: every ordinary request's spans
    arrive (one span out of range once dropped whole export batches)."""
    # (The proxy itself refuses a body with lone surrogates: the readers' own handling of them is
    # fuzzed in tests/test_logger.py.)
    hostile = [{"metadata": {"litellm_received_at": value, "headers": {"traceparent": "\x00" + "é" * 5000}}}
               for value in (1e11, 1e20, 1e300, float("-1e30"))]

    def one(index: int) -> httpx.Response:
        if index % 10 == 0:
            return post(routes_proxy, "/v1/responses", **hostile[index // 10 % len(hostile)])
        return post(routes_proxy, list(ROUTES)[index % 3], team="payments")

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(one, range(80)))
    assert all(r.status_code == 200 for r in responses), [r.text[:200] for r in responses if r.status_code != 200]
    for response in responses:
        trace = trace_of(receiver, response)
        assert trace.request.attributes[a.COST_USD] > 0
    assert_no_hook_errors(routes_proxy, receiver)


def test_a_long_model_name_makes_no_span_name(routes_proxy: LiteLLMProxy, receiver: Any) -> None:
    name = "ghost-" + "x" * 10_000
    response = post(routes_proxy, "/v1/chat/completions", model=name)
    assert response.status_code == 400
    request = trace_of(receiver, response, attempts=0).request
    assert request.name == "litellm.request" and request.attributes[a.MODEL_GROUP] == "_unknown"
    assert request.attributes[a.REQUESTED_MODEL] == name[:256]
    assert all(len(value) <= 256 for value in request.attributes.values() if isinstance(value, str))
