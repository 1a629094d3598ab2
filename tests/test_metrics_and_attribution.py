"""Metrics over real OTLP/gRPC from the real proxy, attribution, and privacy by default."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from litellm_cost_otel import attributes as a
from litellm_cost_otel import metrics as m
from litellm_cost_otel.devtools.gateway import (
    LOCAL_INPUT_PRICE,
    LOCAL_KEY,
    LOCAL_OUTPUT_PRICE,
    PLUGIN,
    PROVIDER_KEY,
    TEAM_AUTH,
    TEAM_KEYS,
    gateway_config,
    proxy_env,
    wait_for_request,
    write_config,
)
from litellm_cost_otel.devtools.proxy import LiteLLMProxy
from litellm_cost_otel.devtools.waiting import eventually

CAP = 20


def team_proxy(tmp: Path, receiver: Any, fake_llm: Any, service: str, settings_section: dict[str, Any] | None,
               **env: str) -> LiteLLMProxy:
    config = gateway_config([PLUGIN])
    config["general_settings"]["custom_auth"] = TEAM_AUTH
    if settings_section is not None:
        config["callback_settings"] = {"litellm_cost_otel": settings_section}
    return LiteLLMProxy(write_config(tmp / "config.yaml", config),
                        proxy_env(receiver, fake_llm, OTEL_SERVICE_NAME=service, **env))


@pytest.fixture(scope="module")
def metrics_proxy(tmp_path_factory: pytest.TempPathFactory, receiver: Any, fake_llm: Any) -> Iterator[LiteLLMProxy]:
    """Default settings, except a small cardinality cap to test."""
    with team_proxy(tmp_path_factory.mktemp("metrics"), receiver, fake_llm, "metrics-gateway", None,
                    LITELLM_COST_OTEL_METRICS_MAX_VALUES_PER_DIMENSION=str(CAP)) as running:
        yield running


@pytest.fixture(scope="module")
def opt_in_proxy(tmp_path_factory: pytest.TempPathFactory, receiver: Any, fake_llm: Any) -> Iterator[LiteLLMProxy]:
    """Every opt-in on, and the OpenInference twins off: from the YAML section, and one from the
    environment."""
    section = {"attribution": ["team_id", "team_alias", "org_id", "key_alias", "key_hash", "user_id",
                               "end_user_id", "tags"],
               "capture_content": True, "content_max_chars": 40, "openinference": False}
    with team_proxy(tmp_path_factory.mktemp("opt-in"), receiver, fake_llm, "opt-in-gateway", section,
                    LITELLM_COST_OTEL_METRICS_TEAM_DIMENSION="true") as running:
        yield running


def send(proxy: LiteLLMProxy, team: str, group: str, content: str, stream: bool = False,
         **body: Any) -> Any:
    payload = {"model": group, "messages": [{"role": "user", "content": content}], "stream": stream, **body}
    if stream:
        payload["stream_options"] = {"include_usage": True}
    return proxy.client.post("/v1/chat/completions", json=payload,
                             headers={"Authorization": f"Bearer {TEAM_KEYS[team]}"})


def totals(receiver: Any, service: str) -> dict[str, float]:
    """Metric totals of one service: sums of counters, counts and sums of histograms."""
    found: dict[str, float] = {}
    for point in receiver.metrics.copy().values():
        if point.service != service:
            continue
        add = {point.name: point.value, f"{point.name}.count": point.count, f"{point.name}.sum": point.sum}
        if point.name == m.TOKEN_USAGE:
            add = {f"{m.TOKEN_USAGE}.{point.attributes[a.GEN_AI_TOKEN_TYPE]}": point.sum}
        if point.name == m.ATTEMPTS:
            add = {f"{m.ATTEMPTS}.{point.attributes[a.OUTCOME]}": point.value}
        for key, value in add.items():
            found[key] = found.get(key, 0) + value
    return found


def wait_for_totals(receiver: Any, service: str, done: Callable[[dict[str, float]], bool],
                    timeout: float = 15) -> dict[str, float]:
    return eventually(lambda: totals(receiver, service), done, timeout)


# (team, group, content, stream, expected attempts, failed attempts, retries, fallback hops)
TRAFFIC = [
    ("payments", "fast", "Hello", False, 1, 0, 0, 0),
    ("search", "fast", "Hello", False, 1, 0, 0, 0),
    ("payments", "local", "prompt_tokens=33 completion_tokens=11", False, 1, 0, 0, 0),
    ("search", "local", "prompt_tokens=7 completion_tokens=5 first_chunk_delay=0.05", True, 1, 0, 0, 0),
    ("payments", "local", "prompt_tokens=9 completion_tokens=4", True, 1, 0, 0, 0),
    ("search", "local", "fail=1 prompt_tokens=21 completion_tokens=8", False, 2, 1, 1, 0),
    ("payments", "fast-outage", "Fall back", False, 3, 2, 1, 1),
    ("search", "fast-outage", "Fall back", False, 3, 2, 1, 1),
    ("payments", "local", "status=503 down", False, 2, 2, 1, 0),
    ("search", "no-such-group", "Hello", False, 0, 0, 0, 0),
]


def test_metric_sums_equal_the_traffic(metrics_proxy: LiteLLMProxy, receiver: Any) -> None:
    service = "metrics-gateway"
    time.sleep(1)  # let any earlier test's points settle before the baseline
    before = totals(receiver, service)

    def one(item: tuple[Any, ...]) -> Any:
        team, group, content, stream = item[:4]
        return send(metrics_proxy, team, group, f"{content} {uuid.uuid4().hex}", stream)

    with ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(one, TRAFFIC))

    cost = input_tokens = output_tokens = 0.0
    for item, response in zip(TRAFFIC, responses, strict=True):
        stream = item[3]
        if response.status_code != 200:
            continue
        if stream:
            chunks = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
            usage = next(chunk["usage"] for chunk in chunks if chunk.get("usage"))
            cost += usage["prompt_tokens"] * LOCAL_INPUT_PRICE + usage["completion_tokens"] * LOCAL_OUTPUT_PRICE
        else:
            usage = response.json()["usage"]
            cost += float(response.headers["x-litellm-response-cost"])
        input_tokens += usage["prompt_tokens"]
        output_tokens += usage["completion_tokens"]
    for item, response in zip(TRAFFIC, responses, strict=True):  # every request's spans have arrived
        wait_for_request(receiver, response.headers["x-litellm-call-id"], attempts=item[4])

    expected = {
        m.REQUESTS: len(TRAFFIC),
        m.COST: cost,
        f"{m.TOKEN_USAGE}.input": input_tokens,
        f"{m.TOKEN_USAGE}.output": output_tokens,
        f"{m.ATTEMPTS}.success": sum(1 for item in TRAFFIC if item[4] > item[5]),
        f"{m.ATTEMPTS}.failure": sum(item[5] for item in TRAFFIC),
        m.RETRIES: sum(item[6] for item in TRAFFIC),
        m.FALLBACKS: sum(item[7] for item in TRAFFIC),
        f"{m.OPERATION_DURATION}.count": sum(item[4] for item in TRAFFIC),
        f"{m.TIME_TO_FIRST_CHUNK}.count": sum(1 for item in TRAFFIC if item[3]),
    }

    def delta(found: dict[str, float]) -> dict[str, float]:
        return {key: found.get(key, 0) - before.get(key, 0) for key in expected}

    after = wait_for_totals(receiver, service, lambda found: delta(found) == pytest.approx(expected, rel=1e-9))
    assert delta(after) == pytest.approx(expected, rel=1e-9)
    assert input_tokens > 0 and cost > 0


def test_token_and_duration_histograms_use_the_genai_buckets(metrics_proxy: LiteLLMProxy, receiver: Any) -> None:
    response = send(metrics_proxy, "payments", "fast", f"Hello {uuid.uuid4().hex}")
    wait_for_request(receiver, response.headers["x-litellm-call-id"], attempts=1)
    points = eventually(lambda: receiver.metric_points(m.TOKEN_USAGE, "metrics-gateway"), bool, timeout=10)
    assert points and points[0].bounds == m.TOKEN_BUCKETS and points[0].unit == "{token}"
    duration = receiver.metric_points(m.OPERATION_DURATION, "metrics-gateway")[0]
    assert duration.bounds == m.SECONDS_BUCKETS and duration.unit == "s"
    assert receiver.metric_points(m.COST, "metrics-gateway")[0].unit == "USD"
    for point in [*points, duration]:
        assert {a.GEN_AI_OPERATION_NAME, a.GEN_AI_PROVIDER_NAME} <= set(point.attributes)


def test_junk_model_names_make_no_series_and_never_push_out_a_real_group(metrics_proxy: LiteLLMProxy,
                                                                         receiver: Any) -> None:
    """500 model names no configured group has (more than the dimension cap), from 500 end
    users: one `_unknown` series, one span name, and a group first used afterwards keeps its
    own series."""
    def one(index: int) -> Any:
        return send(metrics_proxy, "search", f"ghost-model-{index}", "Hello", user=f"end-user-{index}")

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(one, range(500)))
    assert {r.status_code for r in responses} == {400}
    first_use = send(metrics_proxy, "search", "capable", f"Hello {uuid.uuid4().hex}")  # the first 'capable'
    assert first_use.status_code == 200
    wait_for_request(receiver, first_use.headers["x-litellm-call-id"], attempts=1)
    last = wait_for_request(receiver, responses[-1].headers["x-litellm-call-id"], attempts=0)[0]
    assert last.request.name == "litellm.request" and last.request.attributes[a.MODEL_GROUP] == "_unknown"
    assert last.request.attributes[a.REQUESTED_MODEL] == "ghost-model-499"

    def capable_requests() -> float:
        return sum(p.value for p in receiver.metric_points(m.REQUESTS, "metrics-gateway")
                   if p.attributes.get(a.MODEL_GROUP) == "capable")

    receiver.wait_for(lambda _: capable_requests() >= 1)
    points = [p for p in receiver.metrics.copy().values() if p.service == "metrics-gateway"]
    groups = {p.attributes.get(a.MODEL_GROUP) for p in points if p.name == m.REQUESTS}
    assert not any(str(group).startswith("ghost-model-") for group in groups)
    assert "_OTHER" not in groups and "capable" in groups
    assert sum(p.value for p in points if p.name == m.REQUESTS and p.attributes.get(a.MODEL_GROUP) == "_unknown") >= 500
    names = {s.name for s in receiver.snapshot() if s.resource.get("service.name") == "metrics-gateway"
             and a.CALL_ID in s.attributes}
    assert not any("ghost-model" in name for name in names)
    for point in points:
        assert not any("end-user-" in str(value) or "ghost-model" in str(value) for value in point.attributes.values())


def test_nothing_private_leaves_with_the_defaults(metrics_proxy: LiteLLMProxy, receiver: Any) -> None:
    secret = f"confidential-prompt-{uuid.uuid4().hex}"
    responses = [send(metrics_proxy, "payments", "fast", secret, user="jane@example.com",
                      metadata={"tags": ["secret-tag"]}),
                 send(metrics_proxy, "search", "local", f"{secret} more", stream=True),
                 send(metrics_proxy, "search", "local", f"status=503 {secret}")]
    traces = [wait_for_request(receiver, r.headers["x-litellm-call-id"], attempts=n)[0]
              for r, n in zip(responses, (1, 1, 2), strict=True)]
    request = traces[0].request
    # The defaults: team, org and key alias; never the key, its hash, a person or free text.
    assert request.attributes[a.TEAM_ALIAS] == "payments"
    assert request.attributes[a.TEAM_ID] == "payments-id"
    assert request.attributes[a.KEY_ALIAS] == "payments-service-key"
    assert request.attributes[a.ORG_ID] == "acme"
    for name in (a.KEY_HASH, a.USER_ID, a.END_USER_ID, a.REQUEST_TAGS, a.GEN_AI_INPUT_MESSAGES,
                 a.GEN_AI_OUTPUT_MESSAGES):
        assert all(name not in s.attributes for t in traces for s in [t.request, *t.attempts])

    time.sleep(1.2)
    spans = [s for s in receiver.snapshot() if s.resource.get("service.name") == "metrics-gateway"]
    points = [p for p in receiver.metrics.copy().values() if p.service == "metrics-gateway"]
    texts = [json.dumps(s.attributes) + s.name + s.status_message for s in spans]
    texts += [json.dumps(p.attributes) for p in points]
    forbidden = [*TEAM_KEYS.values(), PROVIDER_KEY, LOCAL_KEY, metrics_proxy.master_key, "confidential-prompt",
                 "jane@example.com", "secret-tag", "Hello from the", "Local reply",
                 hashlib.sha256(TEAM_KEYS["payments"].encode()).hexdigest()]
    for text in texts:
        for needle in forbidden:
            assert needle not in text
    assert not any(a.TEAM_ALIAS in p.attributes for p in points)  # not a metric dimension by default


def test_opt_ins_attribution_content_and_team_dimension(opt_in_proxy: LiteLLMProxy, receiver: Any) -> None:
    long_prompt = "prompt_tokens=50 completion_tokens=20 Summarise this report: " + "numbers " * 20
    paid = send(opt_in_proxy, "payments", "local", long_prompt, user="customer-42", metadata={"tags": ["batch-job"]})
    searched = [send(opt_in_proxy, "search", "fast", f"Hi {uuid.uuid4().hex}") for _ in range(2)]
    (trace,) = wait_for_request(receiver, paid.headers["x-litellm-call-id"], attempts=1)
    request, attempt = trace.request.attributes, trace.attempts[0].attributes
    key = TEAM_KEYS["payments"]
    assert request[a.KEY_HASH] == hashlib.sha256(key.encode()).hexdigest()  # the proxy's own hash
    assert request[a.TEAM_ALIAS] == "payments" and request[a.TEAM_ID] == "payments-id"
    assert request[a.USER_ID] == "payments-owner"
    assert request[a.END_USER_ID] == "customer-42"
    assert request[a.REQUEST_TAGS] == ["batch-job"]
    assert key not in json.dumps(request)
    # openinference: false leaves the GenAI names only (the defaults carry both: test_proxy_spans).
    assert attempt[a.GEN_AI_USAGE_INPUT_TOKENS] == 50 and attempt[a.GEN_AI_USAGE_OUTPUT_TOKENS] == 20
    paid_cost = float(paid.headers["x-litellm-response-cost"])
    assert attempt[a.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(paid_cost, rel=1e-9)
    openinference_names = {a.OPENINFERENCE_SPAN_KIND, a.LLM_MODEL_NAME, a.LLM_PROVIDER, a.LLM_FINISH_REASON,
                           a.LLM_COST_TOTAL, a.LLM_TOKEN_COUNT_PROMPT, a.LLM_TOKEN_COUNT_COMPLETION,
                           a.LLM_TOKEN_COUNT_TOTAL}
    assert not openinference_names & (request.keys() | attempt.keys())

    inputs = json.loads(attempt[a.GEN_AI_INPUT_MESSAGES])
    assert inputs[0]["role"] == "user" and inputs[0]["parts"][0]["type"] == "text"
    assert inputs[0]["parts"][0]["content"] == long_prompt[:40] + "…"  # content_max_chars: 40
    outputs = json.loads(attempt[a.GEN_AI_OUTPUT_MESSAGES])
    assert outputs == [{"role": "assistant", "parts": [{"type": "text", "content": "Local reply from the fake model."}],
                        "finish_reason": "stop"}]

    for response in searched:
        wait_for_request(receiver, response.headers["x-litellm-call-id"], attempts=1)
    expected = {"payments": float(paid.headers["x-litellm-response-cost"]),
                "search": sum(float(r.headers["x-litellm-response-cost"]) for r in searched)}

    def per_team() -> dict[str, float]:
        found: dict[str, float] = {}
        for point in receiver.metric_points(m.COST, "opt-in-gateway"):
            team = point.attributes.get(a.TEAM_ALIAS)
            found[team] = found.get(team, 0) + point.value
        return found

    assert eventually(per_team, lambda found: found == pytest.approx(expected, rel=1e-9), timeout=10) == \
        pytest.approx(expected, rel=1e-9)
