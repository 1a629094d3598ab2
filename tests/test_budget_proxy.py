"""The budget guard on real proxies: two replicas sharing a real redis-server (one with
`budget_on_store_error: deny`), and one replica with the in-process store; team keys from the
test auth, the fake local model as the provider (priced per token, so every request's cost is
known exactly and litellm's own `x-litellm-response-cost` is the measure).

Each scenario's requests carry their own text, so the fake server's per-text count says how
many reached the provider. The test that stops Redis runs last in this module.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import litellm
import pytest
import redis

from litellm_cost_otel import attributes as attrs
from litellm_cost_otel import metrics as m
from litellm_cost_otel.budgets import Budget, counter_key, window_of
from litellm_cost_otel.devtools.deploy_tools import RedisServer
from litellm_cost_otel.devtools.fake_llm import FakeLLMServer
from litellm_cost_otel.devtools.gateway import (
    LOCAL_INPUT_PRICE,
    LOCAL_OUTPUT_PRICE,
    budget_config,
    proxy_env,
    write_config,
)
from litellm_cost_otel.devtools.otlp_receiver import OtlpReceiver
from litellm_cost_otel.devtools.proxy import LiteLLMProxy
from litellm_cost_otel.devtools.traces import traces_for_call
from litellm_cost_otel.devtools.waiting import eventually

MODEL = "openai/local-model"  # the `local` deployment: what the guard counts tokens for
OUTPUT_TOKENS = 8


def exact_content(marker: str) -> str:
    """A message whose reported prompt tokens (a fake-server directive) are exactly the tokens
    litellm counts for it, so the guard's estimate is the request's real cost."""
    for guess in range(1, 200):
        content = f"prompt_tokens={guess} completion_tokens={OUTPUT_TOKENS} {marker}"
        if litellm.token_counter(model=MODEL, messages=[{"role": "user", "content": content}]) == guess:
            return content
    raise AssertionError(f"no exact token count for {marker!r}")



def cost_of(content: str) -> float:
    prompt = int(content.split()[0].split("=")[1])
    return prompt * LOCAL_INPUT_PRICE + OUTPUT_TOKENS * LOCAL_OUTPUT_PRICE


CONCURRENT = exact_content("concurrent team budget run")
SESSION = exact_content("agent session loop step")
LIMIT_REQUESTS = 100  # the team budget holds exactly this many concurrent requests' cost
BUDGETS = [
    {"name": "payments-daily", "scope": "team", "limit_usd": LIMIT_REQUESTS * cost_of(CONCURRENT),
     "window": "day", "match": ["payments"]},
    {"name": "fallbacks-daily", "scope": "team", "limit_usd": 1.0, "match": ["fallbacks"]},
    {"name": "agent-session", "scope": "session", "limit_usd": 3.5 * cost_of(SESSION), "window": "total"},
]


@pytest.fixture(scope="module")
def budget_llm() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver, budget_llm: FakeLLMServer,
             redis_server: RedisServer) -> Iterator[list[LiteLLMProxy]]:
    """Replica A (store errors: allow) and replica B (deny), sharing one Redis."""
    directory = tmp_path_factory.mktemp("budgets")
    config = write_config(directory / "config.yaml", budget_config(budget_llm.base_url, BUDGETS, redis_server.url))
    a = LiteLLMProxy(config, proxy_env(receiver, budget_llm, OTEL_SERVICE_NAME="budget-a"),
                     log_path=directory / "a.log")
    b = LiteLLMProxy(config, proxy_env(receiver, budget_llm, OTEL_SERVICE_NAME="budget-b",
                                       LITELLM_COST_OTEL_BUDGET_ON_STORE_ERROR="deny"), log_path=directory / "b.log")
    with a, b:
        yield [a, b]


@pytest.fixture(scope="module")
def in_process_replica(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver,
                       budget_llm: FakeLLMServer) -> Iterator[LiteLLMProxy]:
    directory = tmp_path_factory.mktemp("budgets-local")
    config = write_config(directory / "config.yaml",
                          budget_config(budget_llm.base_url, BUDGETS, "redis://127.0.0.1:1/0"))
    env = proxy_env(receiver, budget_llm, OTEL_SERVICE_NAME="budget-local",
                    LITELLM_COST_OTEL_BUDGET_STORE="in_process")
    with LiteLLMProxy(config, env, log_path=directory / "proxy.log") as proxy:
        yield proxy


def team_key(team: str) -> str:
    return f"sk-{team}-{uuid.uuid4().hex}"


async def send(proxy: LiteLLMProxy, client: httpx.AsyncClient, key: str, content: str,
               **body: Any) -> tuple[str, httpx.Response]:
    call_id = str(uuid.uuid4())
    response = await client.post(f"{proxy.base_url}/v1/chat/completions", headers={
        "Authorization": f"Bearer {key}", "x-litellm-call-id": call_id},
        json={"model": body.pop("model", "local"), "messages": [{"role": "user", "content": content}],
              "max_tokens": OUTPUT_TOKENS, **body})
    return call_id, response


def run_sequence(proxy: LiteLLMProxy, key: str, content: str, count: int, **body: Any) -> list[httpx.Response]:
    async def loop() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return [(await send(proxy, client, key, content, **body))[1] for _ in range(count)]
    return asyncio.run(loop())


def run_concurrently(proxies: list[LiteLLMProxy], key: str, content: str,
                     count: int) -> list[tuple[str, httpx.Response]]:
    async def burst() -> list[tuple[str, httpx.Response]]:
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return list(await asyncio.gather(*(send(proxies[i % len(proxies)], client, key, content)
                                               for i in range(count))))
    return asyncio.run(burst())


def header_cost(response: httpx.Response) -> float:
    return float(response.headers["x-litellm-response-cost"])


def test_concurrent_requests_on_two_replicas_never_overspend_yet_use_the_budget(
        replicas: list[LiteLLMProxy], budget_llm: FakeLLMServer, receiver: OtlpReceiver) -> None:
    limit = BUDGETS[0]["limit_usd"]
    sent = run_concurrently(replicas, team_key("payments"), CONCURRENT, 200)
    admitted = [response for _, response in sent if response.status_code == 200]
    refused = [response for _, response in sent if response.status_code == 429]
    assert len(admitted) + len(refused) == 200, {r.status_code for _, r in sent}
    spent = sum(header_cost(response) for response in admitted)
    assert spent <= limit * (1 + 1e-9)
    assert spent >= 0.9 * limit
    # Each replica alone would admit 100 requests (200 in all): only the shared counter keeps the sum.
    assert len(admitted) == LIMIT_REQUESTS
    assert budget_llm.seen[CONCURRENT] == len(admitted)  # no refused request reached the provider
    error = refused[0].json()["error"]
    assert error["type"] == "budget_exceeded" and error["param"] == "payments-daily" and error["code"] == "429"
    assert error["message"].startswith("Budget 'payments-daily' exceeded for team 'payments-id': $")
    reset = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() + 86400))
    assert f"> limit ${limit:.6f} per day; it resets at {reset}." in error["message"]
    assert 0 < int(refused[0].headers["retry-after"]) <= 86400

    # One request span per request, admitted ones with their budget, refused ones failed by it.
    by_call = {call_id: response.status_code for call_id, response in sent}
    spans = receiver.wait_for(lambda found: all(traces_for_call(found, call) for call in by_call), timeout=30)
    for call_id, status in by_call.items():
        (trace,) = traces_for_call(spans, call_id)
        request = trace.request.attributes
        if status == 200:
            assert len(trace.attempts) == 1
            assert request[attrs.BUDGET_CHECKED] == ["payments-daily"]
            assert -1e-12 <= request[attrs.BUDGET_REMAINING_USD] <= limit
            assert attrs.ERROR_TYPE not in request
        else:
            assert trace.attempts == []
            assert request[attrs.ERROR_TYPE] == "BudgetExceededError"
            assert request[attrs.BUDGET_REFUSED] == "payments-daily"
            assert trace.request.status == "ERROR"
    refusals = eventually(lambda: sum(p.value for p in receiver.metric_points(m.BUDGET_REFUSALS)
                                      if p.service in ("budget-a", "budget-b")), lambda v: v >= len(refused))
    assert refusals == len(refused)


def test_settlement_after_a_fallback_charges_the_served_attempt(replicas: list[LiteLLMProxy],
                                                                 redis_server: RedisServer,
                                                                 receiver: OtlpReceiver) -> None:
    content = exact_content("fallback settlement")
    call_id, response = asyncio.run(_one(replicas[0], team_key("fallbacks"), content, model="broken"))
    assert response.status_code == 200, response.text
    cost = header_cost(response)
    assert cost == pytest.approx(cost_of(content), rel=1e-12)
    (trace,) = eventually(lambda: traces_for_call(receiver.snapshot(), call_id), bool)
    assert len(trace.attempts) == 3  # broken, its retry, then local
    budget = Budget("fallbacks-daily", "team", 1.0)
    counter = counter_key(budget, window_of("day", time.time()), "fallbacks-id")
    client = redis.Redis.from_url(redis_server.url)
    spent, reserved = eventually(lambda: client.hmget(counter, "spent", "reserved"),
                                 lambda found: found[0] is not None)
    assert (int(spent), int(reserved)) == (round(cost * 1e9), 0)
    assert client.zcard(f"{counter}:holds") == 0 and client.pttl(counter) > 0


async def _one(proxy: LiteLLMProxy, key: str, content: str, **body: Any) -> tuple[str, httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await send(proxy, client, key, content, **body)


def _session_loop(proxy: LiteLLMProxy, budget_llm: FakeLLMServer, receiver: OtlpReceiver, service: str) -> None:
    """A session budget of 3.5 requests' cost: one session's loop gets 3, another session goes on."""
    runaway, other = f"agent-{uuid.uuid4().hex}", f"agent-{uuid.uuid4().hex}"
    content = exact_content(f"loop {uuid.uuid4().hex[:8]}")
    before = budget_llm.seen[content]
    looped = run_sequence(proxy, team_key("search"), content, 6, litellm_session_id=runaway)
    assert [r.status_code for r in looped] == [200, 200, 200, 429, 429, 429]
    assert looped[3].json()["error"]["message"].startswith(
        f"Budget 'agent-session' exceeded for session '{runaway}': $")
    assert "in total; it does not reset" in looped[3].json()["error"]["message"]
    assert budget_llm.seen[content] - before == 3
    assert [r.status_code for r in run_sequence(proxy, team_key("search"), content, 2,
                                                litellm_session_id=other)] == [200, 200]
    # The session is on the request spans (GenAI and OpenInference names), never in metrics.
    spans = eventually(lambda: [s for s in receiver.snapshot() if s.attributes.get(attrs.SESSION_ID) == runaway
                                and s.resource.get("service.name") == service], lambda found: len(found) >= 6)
    assert len(spans) == 6 and all(s.attributes[attrs.GEN_AI_CONVERSATION_ID] == runaway for s in spans)
    for point in receiver.metrics.copy().values():
        assert runaway not in str(point.attributes)


def test_a_session_budget_stops_one_runaway_session_on_redis(replicas: list[LiteLLMProxy],
                                                             budget_llm: FakeLLMServer,
                                                             receiver: OtlpReceiver) -> None:
    _session_loop(replicas[1], budget_llm, receiver, "budget-b")


def test_the_in_process_store_enforces_the_same_in_one_replica(in_process_replica: LiteLLMProxy,
                                                               budget_llm: FakeLLMServer,
                                                               receiver: OtlpReceiver) -> None:
    _session_loop(in_process_replica, budget_llm, receiver, "budget-local")
    content = exact_content(f"in-process burst {uuid.uuid4().hex[:8]}")
    # The team budget holds 100 requests' cost of CONCURRENT; this text costs the same or less.
    sent = run_concurrently([in_process_replica], team_key("payments"), content, 120)
    admitted = [r for _, r in sent if r.status_code == 200]
    assert {r.status_code for _, r in sent} == {200, 429}
    spent = sum(header_cost(r) for r in admitted)
    assert 0.9 * BUDGETS[0]["limit_usd"] <= spent <= BUDGETS[0]["limit_usd"] * (1 + 1e-9)
    assert budget_llm.seen[content] == len(admitted)


def test_redis_stopped_mid_run_allow_serves_deny_refuses_and_enforcement_resumes(
        replicas: list[LiteLLMProxy], redis_server: RedisServer, budget_llm: FakeLLMServer,
        receiver: OtlpReceiver) -> None:
    allow, deny = replicas
    content = exact_content(f"store outage {uuid.uuid4().hex[:8]}")
    redis_server.stop()
    try:
        served = run_sequence(allow, team_key("search"), content, 5, litellm_session_id="outage")
        denied = run_sequence(deny, team_key("search"), content, 3, litellm_session_id="outage")
    finally:
        redis_server.start()
    assert [r.status_code for r in served] == [200] * 5  # past the 3.5-request session budget: unchecked
    assert [r.status_code for r in denied] == [503] * 3
    assert denied[0].json()["error"]["type"] == "budget_store_unavailable"
    assert "budget_on_store_error is deny" in denied[0].json()["error"]["message"]
    assert budget_llm.seen[content] == 5
    errors = eventually(lambda: {p.service: p.value for p in receiver.metric_points(m.BUDGET_STORE_ERRORS)
                                 if p.attributes.get(attrs.BUDGET_STORE_STEP) == "reserve"},
                        lambda found: found.get("budget-a", 0) >= 5 and found.get("budget-b", 0) >= 3)
    assert (errors.get("budget-a"), errors.get("budget-b")) == (5, 3)
    _session_loop(allow, budget_llm, receiver, "budget-a")  # Redis is back: enforced again
