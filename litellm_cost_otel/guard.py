"""The budget guard: before a request, hold an upper estimate of its cost on every budget that
applies, or refuse it; when it ends, swap the hold for litellm's real cost.

The estimate: the input tokens as litellm counts them, times the highest input price among
the deployments of the group asked for and of every group it falls back to, plus `max_tokens`
(else the model's maximum output, capped by `budget_max_output_tokens`) times the highest
output price. The settlement takes the same finished `Request` that makes the spans, so the
budgets count exactly the cost the spans carry.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import litellm
from litellm.proxy._types import ProxyException

from .budget_store import Charge, Hold, InProcessStore, RedisStore, StoreError
from .budgets import NANO_USD, Budget, counter_expiry_s, counter_key, scope_value, usd_to_nano, window_of
from .model import BudgetCheck, BudgetHold, Request
from .settings import Settings

log = logging.getLogger("litellm_cost_otel")
PRICES_TTL_S = 60.0  # the router's deployments can change (models added through the API)
MAX_CHARGES_PER_CALL = 256  # one settlement script stays short: Redis runs scripts one at a time


class BudgetExceededError(ProxyException):
    """HTTP 429: a budget has no room for this request."""


class BudgetStoreUnavailableError(ProxyException):
    """HTTP 503: the budget store is unreachable and the operator chose `deny`."""


class BudgetEvents(Protocol):
    """Where the guard reports what it did (the metrics recorder)."""

    def budget_refused(self, budget: str) -> None: ...

    def budget_store_error(self, step: str) -> None: ...

    def budget_spent(self, budget: str, usd: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Prices:
    input_per_token: float = 0.0
    output_per_token: float = 0.0
    max_output_tokens: int | None = None
    model: str = ""  # a deployment model of the group, for litellm's token counter


# --- what a request may cost: prices of the groups it may reach, tokens it may use -------------

def _router() -> Any:
    return getattr(sys.modules.get("litellm.proxy.proxy_server"), "llm_router", None)


def _reachable_groups(router: Any, group: str) -> list[str]:
    """The group and every group its fallbacks (and the default `*` ones) may reach."""
    rules: dict[str, list[str]] = {}
    for entry in getattr(router, "fallbacks", None) or []:
        if isinstance(entry, Mapping):
            for source, targets in entry.items():
                rules.setdefault(str(source), []).extend(t for t in targets or [] if isinstance(t, str))
    found, pending = [group], [group]
    while pending:
        current = pending.pop()
        for target in rules.get(current) or rules.get("*", []):
            if target not in found:
                found.append(target)
                pending.append(target)
    return found


def _number(value: object) -> float | None:
    try:
        return None if isinstance(value, bool) or value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _deployment_prices(deployment: Mapping[str, Any]) -> Prices:
    """Explicit prices of a deployment (litellm_params, then model_info), else litellm's map."""
    params = deployment.get("litellm_params") or {}
    info = deployment.get("model_info") or {}
    model = str(params.get("model") or "")
    listed: Mapping[str, Any] = {}
    if not any(key in source for source in (params, info) for key in ("input_cost_per_token", "output_cost_per_token")):
        try:
            listed = litellm.get_model_info(model=model) or {}
        except Exception:  # an unpriced model: the estimate takes no price from it
            listed = {}

    def pick(key: str) -> float | None:
        for source in (params, info, listed):
            value = _number(source.get(key))
            if value is not None:
                return value
        return None

    max_output = pick("max_output_tokens") or pick("max_tokens")
    return Prices(pick("input_cost_per_token") or 0.0, pick("output_cost_per_token") or 0.0,
                  int(max_output) if max_output else None, model)


def group_prices(router: Any, group: str) -> Prices:
    """The highest prices and output limit among the deployments the group may reach."""
    reachable = set(_reachable_groups(router, group))
    deployments = [d for d in getattr(router, "model_list", None) or []
                   if isinstance(d, Mapping) and d.get("model_name") in reachable]
    if not deployments:
        return Prices()
    each = [_deployment_prices(deployment) for deployment in deployments]
    outputs = [prices.max_output_tokens for prices in each if prices.max_output_tokens]
    own = next((p.model for p, d in zip(each, deployments, strict=True) if d.get("model_name") == group), "")
    return Prices(max(p.input_per_token for p in each), max(p.output_per_token for p in each),
                  max(outputs) if outputs else None, own)


def _text(value: object) -> str:
    """The text of a body field: a string, or the text parts of a list of items (Responses API
    input, Anthropic system blocks); anything else as its JSON-ish string."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return " ".join(_text(item.get("text") or item.get("content") or "") if isinstance(item, Mapping)
                        else _text(item) for item in value)
    return "" if value is None else str(value)


def input_tokens(body: Mapping[str, Any], model: str) -> int:
    """The request's input tokens as litellm counts them (chat-format overhead included)."""
    messages = body.get("messages")
    extra = " ".join(_text(body.get(key)) for key in ("system", "instructions", "prompt", "input") if key in body)
    count = 0
    if isinstance(messages, list) and messages:
        count += litellm.token_counter(model=model, messages=messages, use_default_image_token_count=True)
    if extra:
        count += litellm.token_counter(model=model, text=extra)
    return count


def output_tokens(body: Mapping[str, Any], operation: str, prices: Prices, cap: int) -> int:
    if operation == "embeddings":
        return 0
    asked: int | None = None
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            asked = value
            break
    limit = prices.max_output_tokens
    if asked is not None:
        return min(asked, limit) if limit else asked
    return min(limit, cap) if limit else cap


# --- the guard -----------------------------------------------------------------------------------

class BudgetGuard:
    def __init__(self, budgets: Sequence[Budget], store: Any, on_store_error: str, hold_s: float,
                 max_output_tokens: int, events: BudgetEvents | None = None,
                 clock: Callable[[], float] = time.time,
                 warn: Callable[[str, str], None] = lambda key, message: log.warning(message)) -> None:
        self.budgets = list(budgets)
        self.warn = warn
        self.store = store
        self.deny_on_store_error = on_store_error == "deny"
        self.hold_s = hold_s
        self.max_output_tokens = max_output_tokens
        self.events = events
        self.clock = clock
        self._prices: dict[str, tuple[float, Prices]] = {}
        self._pending: list[Charge] = []
        self._sender: asyncio.Task[None] | None = None  # sends what is pending, until nothing is
        self.store_errors = 0

    def prices(self, group: str) -> Prices:
        now = self.clock()
        cached = self._prices.get(group)
        if cached is not None and now - cached[0] < PRICES_TTL_S:
            return cached[1]
        prices = group_prices(_router(), group)
        if len(self._prices) > 1024:  # configured groups only; bounded all the same
            self._prices.clear()
        self._prices[group] = (now, prices)
        return prices

    def estimate_usd(self, request: Request, body: Mapping[str, Any], operation: str) -> float:
        prices = self.prices(request.model_group)
        if not prices.input_per_token and not prices.output_per_token:
            return 0.0
        tokens_in = input_tokens(body, prices.model) if prices.input_per_token else 0
        tokens_out = output_tokens(body, operation, prices, self.max_output_tokens)
        return tokens_in * prices.input_per_token + tokens_out * prices.output_per_token

    async def check(self, request: Request, body: Mapping[str, Any], operation: str,
                    session_id: str | None = None) -> BudgetCheck | None:
        """Hold the estimate on every budget that applies, or raise the refusal for the client
        (BudgetExceededError, or BudgetStoreUnavailableError under `deny`). `session_id`
        stands in for a request without litellm's own session id (the client's trace id)."""
        now = self.clock()
        applying = [(budget, value) for budget in self.budgets
                    if (value := scope_value(budget, request, session_id)) is not None]
        if not applying:
            return None
        estimate = usd_to_nano(self.estimate_usd(request, body, operation))
        holds, windows = [], []
        for budget, value in applying:
            window = window_of(budget.window, now)
            expires = counter_expiry_s(budget, window, now, self.hold_s)
            holds.append(Hold(counter_key(budget, window, value), budget.limit_nano, estimate,
                              None if expires is None else int(expires * 1000)))
            windows.append(window)
        reservation_id = uuid.uuid4().hex
        hold_expires_ms = int((now + self.hold_s) * 1000)
        try:
            answer = await self.store.reserve(reservation_id, holds, int(now * 1000), hold_expires_ms)
        except StoreError as error:
            self._store_failed("reserve", error)
            if self.deny_on_store_error:
                raise BudgetStoreUnavailableError(
                    "The budget store is unreachable and budget_on_store_error is deny: the request was not sent. "
                    "Retry shortly; the gateway's operators are told by its metrics.",
                    "budget_store_unavailable", None, 503) from None
            return None
        if answer.refused is not None:
            budget, value = applying[answer.refused]
            window = windows[answer.refused]
            if self.events is not None:
                self.events.budget_refused(budget.name)
            raise self._refusal(budget, value, window, answer.used_nano[answer.refused], estimate, now)
        return BudgetCheck(reservation_id, tuple(
            BudgetHold(budget.name, budget.scope, hold.counter, estimate / NANO_USD,
                       (budget.limit_nano - used - estimate) / NANO_USD, hold.counter_expires_ms)
            for (budget, _), hold, used in zip(applying, holds, answer.used_nano, strict=True)),
            hold_expires_ms * 1_000_000)

    def _refusal(self, budget: Budget, value: str, window: Any, used_nano: int, estimate_nano: int,
                 now: float) -> BudgetExceededError:
        shown = "this key" if budget.scope == "key" else f"{budget.scope} '{value}'"  # never a key's hash
        if window.end_s is not None:
            reset = datetime.datetime.fromtimestamp(window.end_s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            when = f"per {budget.window}; it resets at {reset}"
            headers = {"retry-after": str(int(window.end_s - now) + 1)}
        else:
            when, headers = "in total; it does not reset", {}
        return BudgetExceededError(
            f"Budget '{budget.name}' exceeded for {shown}: ${used_nano / NANO_USD:.6f} spent or held "
            f"+ this request's estimate ${estimate_nano / NANO_USD:.6f} > limit ${budget.limit_usd:.6f} {when}.",
            "budget_exceeded", budget.name, 429, headers=headers)

    def settle(self, request: Request) -> None:
        """Swap the request's holds for its cost, off the request path: charges wait in a list
        that one task on the loop sends, all of them in one store call (under load, many
        requests' settlements share one Redis round trip)."""
        check = request.budget
        if check is None or not check.holds:
            return
        cost = request.cost_usd
        for hold in check.holds:  # each counter keeps the expiry its window gave it at the check
            self._pending.append(Charge(check.reservation_id, hold.counter, usd_to_nano(cost),
                                        hold.counter_expires_ms))
            if self.events is not None:
                self.events.budget_spent(hold.name, cost)
        if self._sender is None or self._sender.done():
            try:
                self._sender = asyncio.get_running_loop().create_task(self._send_settlements())
            except RuntimeError:
                self._pending.clear()
                self.warn("settle:no-loop", "litellm_cost_otel: a budget settlement outside an event loop was "
                          f"dropped; its holds expire after {self.hold_s:.0f} s")

    async def _send_settlements(self) -> None:
        while self._pending:
            charges, self._pending = self._pending[:MAX_CHARGES_PER_CALL], self._pending[MAX_CHARGES_PER_CALL:]
            try:
                await self.store.settle(charges, int(self.clock() * 1000))
            except StoreError as error:
                self._store_failed("settle", error)

    async def settled(self) -> None:
        """Wait for the settlements under way (tests; shutdown)."""
        while self._sender is not None and not self._sender.done():
            await self._sender

    def _store_failed(self, step: str, error: Exception) -> None:
        self.store_errors += 1
        if self.events is not None:
            self.events.budget_store_error(step)
        if step == "settle":
            effect = f"this request's cost is not counted and its holds expire after {self.hold_s:.0f} s"
        else:
            effect = "requests are refused (deny)" if self.deny_on_store_error else \
                "requests go through unchecked (allow)"
        self.warn(f"store:{step}", f"litellm_cost_otel: the budget store failed to {step} ({error}); {effect}")


# --- from the settings ---------------------------------------------------------------------------

def redis_url(settings: Settings, environ: Mapping[str, str] = os.environ) -> str:
    """`budget_redis_url`, else the proxy's own REDIS_HOST / REDIS_PORT / REDIS_PASSWORD."""
    if settings.budget_redis_url:
        return settings.budget_redis_url
    host = environ.get("REDIS_HOST")
    if not host:
        log.error("litellm_cost_otel: budget_store is redis but neither budget_redis_url nor REDIS_HOST is set; "
                  "trying localhost:6379 (budget_on_store_error=%s applies while it fails)",
                  settings.budget_on_store_error)
        host = "localhost"
    password = environ.get("REDIS_PASSWORD")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{environ.get('REDIS_PORT') or 6379}/0"


def guard_from_settings(settings: Settings, events: BudgetEvents | None,
                        warn: Callable[[str, str], None]) -> BudgetGuard | None:
    """The guard the settings ask for; None (off) without budgets."""
    if not settings.budgets:
        return None
    store: Any = RedisStore(redis_url(settings), settings.budget_store_timeout_s) \
        if settings.budget_store == "redis" else InProcessStore()
    return BudgetGuard(settings.budgets, store, settings.budget_on_store_error, settings.request_timeout_s,
                       settings.budget_max_output_tokens, events, warn=warn)
