"""The budget guard's parts without a proxy: configuration, windows, whom a budget applies to,
and the two stores' semantics (the Redis one against a real redis-server), with an injected
clock. The proxy-level guarantees are in tests/test_budget_proxy.py."""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import litellm
import pytest
import redis

from litellm_cost_otel.budget_store import Charge, Hold, InProcessStore, RedisStore
from litellm_cost_otel.budgets import (
    Budget,
    BudgetConfigError,
    counter_expiry_s,
    counter_key,
    parse_budget,
    parse_budgets,
    scope_value,
    window_of,
)
from litellm_cost_otel.devtools.deploy_tools import RedisServer
from litellm_cost_otel.guard import (
    BudgetExceededError,
    BudgetGuard,
    BudgetStoreUnavailableError,
    Prices,
    group_prices,
    input_tokens,
    output_tokens,
    redis_url,
)
from litellm_cost_otel.model import Attribution, Request
from litellm_cost_otel.settings import Settings, load_settings


def utc(*parts: int) -> float:
    return datetime.datetime(*parts, tzinfo=datetime.timezone.utc).timestamp()  # type: ignore[misc]


# --- configuration -------------------------------------------------------------------------------

@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "t", "scope": "tenant", "limit_usd": 1}, "budget 't': unknown scope 'tenant'"),
    ({"name": "t", "scope": "team", "limit_usd": -5}, "budget 't': `limit_usd` must be a number above 0"),
    ({"name": "t", "scope": "team", "limit_usd": 0}, "budget 't': `limit_usd` must be a number above 0"),
    ({"name": "t", "scope": "team", "limit_usd": True}, "budget 't': `limit_usd` must be a number above 0"),
    ({"name": "t", "scope": "team", "limit_usd": 1e7}, "at most 9,000,000"),
    ({"name": "t", "scope": "team", "limit_usd": 1, "window": "week"}, "budget 't': unknown window 'week'"),
    ({"name": "t", "scope": "global", "limit_usd": 1, "match": ["x"]}, "`match` must be a non-empty list"),
    ({"name": "t", "scope": "team", "limit_usd": 1, "match": "payments"}, "`match` must be a non-empty list"),
    ({"name": "t", "scope": "team", "limit_usd": 1, "limit": 2}, "unknown key(s) ['limit']"),
    ({"name": "has space", "scope": "team", "limit_usd": 1}, "`name` must be 1 to 64 letters"),
    ("team-daily", "budgets[3] must be a mapping"),
])
def test_a_bad_budget_is_named_with_what_to_fix(entry: Any, message: str) -> None:
    with pytest.raises(BudgetConfigError) as raised:
        parse_budget(entry, 3)
    assert message in str(raised.value)


def test_good_budgets_parse_and_bad_ones_are_reported_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    raw = [{"name": "team-daily", "scope": "team", "limit_usd": 25, "window": "day", "match": ["payments"]},
           {"name": "broken", "scope": "nope", "limit_usd": 1},
           {"name": "team-daily", "scope": "key", "limit_usd": 2},
           {"name": "runaway", "scope": "session", "limit_usd": 0.5, "window": "total"}]
    budgets, errors = parse_budgets(raw)
    assert budgets == [Budget("team-daily", "team", 25.0, "day", frozenset({"payments"})),
                       Budget("runaway", "session", 0.5, "total", None)]
    assert [e.split(":")[0] for e in errors] == ["budget 'broken'", "budget 'team-daily'"]
    with caplog.at_level(logging.ERROR, logger="litellm_cost_otel"):
        settings = load_settings(environ={"LITELLM_COST_OTEL_BUDGET_STORE": "redis"},
                                 yaml_section={"budgets": raw, "budget_on_store_error": "deny"})
    assert [b.name for b in settings.budgets] == ["team-daily", "runaway"]
    assert (settings.budget_store, settings.budget_on_store_error) == ("redis", "deny")
    assert "budget 'broken': unknown scope 'nope'; choose from team, key, user, end_user, session, model_group, " \
           "global; this budget is not enforced" in caplog.text


def test_store_settings_are_validated(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="litellm_cost_otel"):
        settings = load_settings(environ={"LITELLM_COST_OTEL_BUDGET_STORE": "postgres",
                                          "LITELLM_COST_OTEL_BUDGET_ON_STORE_ERROR": "maybe",
                                          "LITELLM_COST_OTEL_BUDGET_REDIS_URL": "localhost:6379"})
    assert (settings.budget_store, settings.budget_on_store_error, settings.budget_redis_url) == \
        ("in_process", "allow", None)
    assert "LITELLM_COST_OTEL_BUDGET_STORE='postgres' (expected one of in_process, redis)" in caplog.text
    assert "expected a redis://, rediss:// or unix:// URL" in caplog.text


def test_the_redis_url_defaults_to_the_proxys_own_redis_settings() -> None:
    assert redis_url(Settings(), {"REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_PASSWORD": "p@ss"}) == \
        "redis://:p%40ss@cache:6380/0"
    assert redis_url(Settings(budget_redis_url="redis://r:1/2"), {"REDIS_HOST": "cache"}) == "redis://r:1/2"


# --- windows and scopes --------------------------------------------------------------------------

def test_windows_are_fixed_and_utc_aligned() -> None:
    last_moment = utc(2026, 12, 3, 23, 59, 59) + 0.999
    assert window_of("day", last_moment).id == "day:2026-12-03"
    assert window_of("day", last_moment).end_s == utc(2026, 12, 4)
    assert window_of("day", utc(2026, 12, 4)).id == "day:2026-12-04"
    assert window_of("hour", utc(2026, 12, 3, 6, 30)).id == "hour:2026-12-03T06"
    assert window_of("hour", utc(2026, 12, 3, 6, 30)).end_s == utc(2026, 12, 3, 7)
    assert window_of("month", utc(2026, 12, 31, 23)).end_s == utc(2027, 1, 1)
    assert window_of("month", utc(2028, 2, 10)).end_s == utc(2028, 3, 1)  # a leap year's February
    assert window_of("total", last_moment).end_s is None


def test_counters_expire_after_their_window_and_client_totals_after_a_while() -> None:
    now = utc(2026, 12, 3, 12)
    team = Budget("t", "team", 1.0, "day")
    assert counter_expiry_s(team, window_of("day", now), now, 900) == utc(2026, 12, 4) + 900
    assert counter_expiry_s(Budget("t", "team", 1.0, "total"), window_of("total", now), now, 900) is None
    session = Budget("s", "session", 1.0, "total")
    assert counter_expiry_s(session, window_of("total", now), now, 900) == now + 30 * 24 * 3600


def request(**who: Any) -> Request:
    session = who.pop("session_id", None)
    group = who.pop("model_group", "_unknown")
    return Request("c", 0, model_group=group, attribution=Attribution(**who), session_id=session)


def test_a_budget_applies_to_the_value_the_proxy_resolved() -> None:
    team = request(team_id="t-1", team_alias="payments", key_hash="h", key_alias="svc", user_id="u")
    assert scope_value(Budget("b", "team", 1.0), team) == "t-1"
    assert scope_value(Budget("b", "team", 1.0, match=frozenset({"payments"})), team) == "t-1"
    assert scope_value(Budget("b", "team", 1.0, match=frozenset({"t-1"})), team) == "t-1"
    assert scope_value(Budget("b", "team", 1.0, match=frozenset({"search"})), team) is None
    assert scope_value(Budget("b", "key", 1.0), team) == "h"
    assert scope_value(Budget("b", "key", 1.0, match=frozenset({"svc"})), team) == "h"
    assert scope_value(Budget("b", "user", 1.0), team) == "u"
    assert scope_value(Budget("b", "end_user", 1.0), team) is None
    assert scope_value(Budget("b", "team", 1.0), request()) is None
    assert scope_value(Budget("b", "model_group", 1.0), request()) is None  # no configured group
    assert scope_value(Budget("b", "model_group", 1.0), request(model_group="fast")) == "fast"
    assert scope_value(Budget("b", "global", 1.0), request()) == "global"
    assert scope_value(Budget("b", "session", 1.0), request(session_id="s-1"), "trace") == "s-1"
    assert scope_value(Budget("b", "session", 1.0), request(), "trace") == "trace"


def test_counter_keys_hash_the_value_and_separate_windows() -> None:
    budget = Budget("team-daily", "team", 1.0)
    day = window_of("day", utc(2026, 12, 3))
    key = counter_key(budget, day, "evil\r\nFLUSHALL" + "x" * 10_000)
    assert key.startswith("litellm_cost_otel:budget:team-daily:day:2026-12-03:") and len(key) < 100
    assert counter_key(budget, window_of("day", utc(2026, 12, 4)), "a") != counter_key(budget, day, "a")


# --- estimates: prices from a real litellm Router -----------------------------------------------------

def test_the_estimate_takes_the_highest_price_among_the_group_and_its_fallbacks() -> None:
    router = litellm.Router(model_list=[
        {"model_name": "local", "litellm_params": {"model": "openai/m", "api_key": "k", "api_base": "http://x",
                                                    "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}},
        {"model_name": "backup", "litellm_params": {"model": "openai/m", "api_key": "k", "api_base": "http://x",
                                                     "input_cost_per_token": 3e-6, "output_cost_per_token": 1e-6}},
        {"model_name": "last", "litellm_params": {"model": "mistral/mistral-large-latest", "api_key": "k"}},
        {"model_name": "other", "litellm_params": {"model": "openai/m", "api_key": "k", "api_base": "http://x",
                                                    "input_cost_per_token": 1.0, "output_cost_per_token": 1.0}},
    ], fallbacks=[{"local": ["backup"]}, {"backup": ["last"]}])
    large = litellm.get_model_info("mistral/mistral-large-latest")
    prices = group_prices(router, "local")
    assert prices.input_per_token == max(3e-6, large["input_cost_per_token"])
    assert prices.output_per_token == max(2e-6, large["output_cost_per_token"])
    assert prices.max_output_tokens == large["max_output_tokens"]
    assert prices.model == "openai/m"
    assert group_prices(router, "nobody") == Prices()


def test_tokens_counted_as_litellm_counts_them() -> None:
    messages = [{"role": "user", "content": "Say hello."}]
    assert input_tokens({"messages": messages}, "gpt-4o") == litellm.token_counter(model="gpt-4o", messages=messages)
    assert input_tokens({"input": "Say hello."}, "gpt-4o") == litellm.token_counter(model="gpt-4o", text="Say hello.")
    prices = Prices(max_output_tokens=8192)
    assert output_tokens({"max_tokens": 50}, "chat", prices, 4096) == 50
    assert output_tokens({"max_output_tokens": 9000}, "chat", prices, 4096) == 8192
    assert output_tokens({}, "chat", prices, 4096) == 4096
    assert output_tokens({}, "chat", Prices(max_output_tokens=1000), 4096) == 1000
    assert output_tokens({"max_tokens": 50}, "embeddings", prices, 4096) == 0


# --- the stores: the same semantics in memory and in a real Redis -----------------------------------

StoreFactory = Callable[[], Any]


@pytest.fixture(params=["in_process", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    if request.param == "in_process":
        yield InProcessStore
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        yield lambda: RedisStore(server.url)


def run(step: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(step())  # type: ignore[arg-type]


def test_reserving_is_all_or_none_and_stops_exactly_at_the_limit(make_store: StoreFactory) -> None:
    a, b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"

    async def scenario() -> list[Any]:
        store = make_store()
        found = [await store.reserve("r1", [Hold(a, 100, 60, None)], 0, 10_000),
                 await store.reserve("r2", [Hold(a, 100, 40, None)], 0, 10_000),  # exactly the limit
                 await store.reserve("r3", [Hold(b, 1000, 5, None), Hold(a, 100, 1, None)], 0, 10_000),
                 await store.totals(a), await store.totals(b)]
        await store.settle([Charge("r1", a, 25, None)], 0)  # a hold of 60 costs 25
        found += [await store.totals(a), await store.reserve("r4", [Hold(a, 100, 35, None)], 0, 10_000),
                  await store.reserve("r5", [Hold(a, 100, 1, None)], 0, 10_000)]
        await store.close()
        return found

    first, second, third, totals_a, totals_b, settled, fourth, fifth = run(scenario)
    assert (first.refused, second.refused, third.refused) == (None, None, 1)
    assert third.used_nano == (0, 100)
    assert (totals_a, totals_b) == ((0, 100), (0, 0))  # the refused request held nothing anywhere
    assert settled == (25, 40)
    assert (fourth.refused, fourth.used_nano) == (None, (65,))
    assert (fifth.refused, fifth.used_nano) == (0, (100,))


def test_a_zero_estimate_still_needs_room(make_store: StoreFactory) -> None:
    a = f"a-{uuid.uuid4().hex}"

    async def scenario() -> list[Any]:
        store = make_store()
        await store.settle([Charge("gone", a, 100, None)], 0)
        found = [await store.reserve("r", [Hold(a, 100, 0, None)], 0, 1000), await store.totals(a)]
        await store.close()
        return found

    refused, totals = run(scenario)
    assert (refused.refused, totals) == (0, (100, 0))


def test_one_settlement_call_settles_many_requests(make_store: StoreFactory) -> None:
    a, b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"

    async def scenario() -> list[Any]:
        store = make_store()
        await store.reserve("r1", [Hold(a, 1000, 100, None), Hold(b, 1000, 100, None)], 0, 10_000)
        await store.reserve("r2", [Hold(a, 1000, 50, None)], 0, 10_000)
        await store.settle([Charge("r1", a, 30, None), Charge("r1", b, 30, None), Charge("r2", a, 20, None)], 0)
        found = [await store.totals(a), await store.totals(b)]
        await store.close()
        return found

    assert run(scenario) == [(50, 0), (30, 0)]


def test_a_hold_nobody_settles_expires_after_the_request_timeout(make_store: StoreFactory) -> None:
    a = f"a-{uuid.uuid4().hex}"

    async def scenario() -> list[Any]:
        store = make_store()
        found = [await store.reserve("dead-replica", [Hold(a, 100, 90, None)], 1_000, 61_000),
                 await store.reserve("r", [Hold(a, 100, 20, None)], 60_999, 120_000),  # still held
                 await store.reserve("r", [Hold(a, 100, 20, None)], 61_000, 121_000)]  # released
        found.append(await store.totals(a))
        await store.settle([Charge("dead-replica", a, 7, None)], 62_000)  # a late settlement still counts
        found.append(await store.totals(a))
        await store.close()
        return found

    first, blocked, admitted, totals, late = run(scenario)
    assert (first.refused, blocked.refused, blocked.used_nano, admitted.refused) == (None, 0, (90,), None)
    assert totals == (0, 20)
    assert late == (7, 20)


def test_the_guard_starts_a_new_window_at_midnight_utc(make_store: StoreFactory) -> None:
    """Injected clock: spend fills a day's budget at 23:59:59; the next day starts at 0. (A day
    to come: Redis drops a counter at once when its expiry has passed in real time.)"""
    clock = [utc(2099, 12, 3, 23, 59, 59)]
    budget = Budget(f"daily-{uuid.uuid4().hex[:8]}", "team", 0.001, "day")

    async def scenario() -> list[Any]:
        guard = BudgetGuard([budget], make_store(), "allow", 900, 4096, clock=lambda: clock[0])
        outcomes: list[Any] = []
        spender = request(team_id="t")
        spender.budget = await guard.check(spender, {}, "chat")
        spender.attempts.append(_answered(cost_usd=0.001))
        guard.settle(spender)
        await guard.settled()
        try:
            await guard.check(request(team_id="t"), {}, "chat")
        except BudgetExceededError as refusal:
            outcomes.append(refusal)
        outcomes.append(await guard.check(request(team_id="other"), {}, "chat"))  # another team: its own
        clock[0] = utc(2099, 12, 4)
        outcomes.append(await guard.check(request(team_id="t"), {}, "chat"))
        return outcomes

    refusal, other_team, next_day = run(scenario)
    assert refusal.code == "429" and refusal.param == budget.name and refusal.type == "budget_exceeded"
    assert refusal.headers == {"retry-after": "2"}
    assert refusal.message == (
        f"Budget '{budget.name}' exceeded for team 't': $0.001000 spent or held + this request's estimate "
        "$0.000000 > limit $0.001000 per day; it resets at 2099-12-04T00:00:00Z.")
    assert other_team is not None and other_team.holds[0].remaining_usd == pytest.approx(0.001)
    assert next_day is not None and next_day.holds[0].counter.split(":")[4] == "2099-12-04"


def _answered(cost_usd: float) -> Any:
    from litellm_cost_otel.model import Attempt

    attempt = Attempt(number=1, start_ns=0, end_ns=1)
    attempt.cost_usd = cost_usd
    return attempt


def test_an_unreachable_store_allows_or_denies_as_configured() -> None:
    dead = "redis://127.0.0.1:1/0"  # nobody listens on port 1
    warnings: list[str] = []

    async def scenario(policy: str) -> Any:
        guard = BudgetGuard([Budget("g", "global", 1.0)], RedisStore(dead, 0.2), policy, 900, 4096,
                            warn=lambda key, message: warnings.append(message))
        try:
            return await guard.check(request(), {}, "chat"), guard.store_errors
        except BudgetStoreUnavailableError as refusal:
            return refusal, guard.store_errors

    assert run(lambda: scenario("allow")) == (None, 1)
    refusal, errors = run(lambda: scenario("deny"))
    assert (refusal.code, refusal.type, errors) == ("503", "budget_store_unavailable", 1)
    assert "the budget store failed to reserve (ConnectionError" in warnings[0]
    assert warnings[0].endswith("requests go through unchecked (allow)")
    assert warnings[1].endswith("requests are refused (deny)")


def test_only_a_plugin_with_budgets_makes_the_proxy_call_its_pre_call_hook() -> None:
    """The proxy walks its callbacks per request once one class defines the pre-call hook."""
    from litellm_cost_otel.logger import BudgetGuardedLogger, CostOtelLogger, ProxyLogger, proxy_handler

    assert "async_pre_call_hook" not in vars(CostOtelLogger)
    assert type(proxy_handler(Settings())) is ProxyLogger and "async_pre_call_hook" not in vars(ProxyLogger)
    guarded = proxy_handler(Settings(budgets=(Budget("g", "global", 1.0),)))
    assert type(guarded) is BudgetGuardedLogger and "async_pre_call_hook" in vars(BudgetGuardedLogger)


def test_a_request_settled_after_midnight_charges_its_own_days_counter(redis_server: RedisServer) -> None:
    """The counter keeps the expiry of the window it was reserved in, whenever it settles (on a
    day to come, as above)."""
    clock = [utc(2099, 12, 3, 23, 59, 59)]
    budget = Budget(f"late-{uuid.uuid4().hex[:8]}", "team", 1.0, "day")

    async def scenario() -> Any:
        guard = BudgetGuard([budget], RedisStore(redis_server.url), "allow", 900, 4096, clock=lambda: clock[0])
        late = request(team_id="t")
        late.budget = await guard.check(late, {}, "chat")
        late.attempts.append(_answered(cost_usd=0.25))
        clock[0] = utc(2099, 12, 4, 0, 0, 1)
        guard.settle(late)
        await guard.settled()
        return late.budget

    check = run(scenario)
    assert check is not None
    counter = check.holds[0].counter
    assert ":day:2099-12-03:" in counter
    client = redis.Redis.from_url(redis_server.url)
    assert client.hmget(counter, "spent", "reserved") == [b"250000000", b"0"]
    assert client.pexpiretime(counter) == int((utc(2099, 12, 4) + 900) * 1000)
