"""Budgets: how they are configured, their windows, and whom each one applies to.

No litellm, no OpenTelemetry and no store here: guard.py estimates, reserves and settles;
budget_store.py keeps the counters. Amounts are integers of nano-USD everywhere below the
configuration, so that sums across replicas never drift.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .model import UNKNOWN_GROUP, Request

SCOPES = ("team", "key", "user", "end_user", "session", "model_group", "global")
WINDOWS = ("hour", "day", "month", "total")
# Values the client chooses: a budget on them is a safety net for runaway agents, not a
# security control, and their counters expire after a while even on a `total` window.
CLIENT_SCOPES = frozenset({"session", "end_user"})
CLIENT_TOTAL_IDLE_S = 30 * 24 * 3600
NANO_USD = 10**9
# Redis' Lua numbers are doubles: integers are exact up to 2**53 nano-USD, about $9 million.
MAX_LIMIT_USD = 9e6
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
KEY_PREFIX = "litellm_cost_otel:budget"


class BudgetConfigError(ValueError):
    """A budget the guard cannot enforce; the message names it and says what to fix."""


@dataclass(frozen=True, slots=True)
class Budget:
    name: str
    scope: str
    limit_usd: float
    window: str = "day"
    match: frozenset[str] | None = None  # only these values (ids or aliases); None: each value apart

    @property
    def limit_nano(self) -> int:
        return round(self.limit_usd * NANO_USD)


def parse_budget(raw: object, index: int) -> Budget:
    """One entry of `budgets:`; a BudgetConfigError names the entry and the problem."""
    if not isinstance(raw, Mapping):
        raise BudgetConfigError(f"budgets[{index}] must be a mapping with name, scope and limit_usd, got {raw!r}")
    name = raw.get("name")
    label = f"budget {name!r}" if isinstance(name, str) else f"budgets[{index}]"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BudgetConfigError(f"{label}: `name` must be 1 to 64 letters, digits, '_', '.' or '-'")
    unknown = set(raw) - {"name", "scope", "limit_usd", "window", "match"}
    if unknown:
        raise BudgetConfigError(f"{label}: unknown key(s) {sorted(unknown)}; known: name, scope, limit_usd, "
                                "window, match")
    scope = raw.get("scope")
    if scope not in SCOPES:
        raise BudgetConfigError(f"{label}: unknown scope {scope!r}; choose from {', '.join(SCOPES)}")
    limit = raw.get("limit_usd")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 < limit <= MAX_LIMIT_USD:
        raise BudgetConfigError(f"{label}: `limit_usd` must be a number above 0 and at most {MAX_LIMIT_USD:,.0f}, "
                                f"got {limit!r}")
    window = raw.get("window", "day")
    if window not in WINDOWS:
        raise BudgetConfigError(f"{label}: unknown window {window!r}; choose from {', '.join(WINDOWS)}")
    match = raw.get("match")
    if match is not None:
        if scope == "global" or not isinstance(match, (list, tuple)) or not match or \
                not all(isinstance(value, str) and value for value in match):
            raise BudgetConfigError(f"{label}: `match` must be a non-empty list of names (not on scope global)")
        match = frozenset(match)
    return Budget(name, scope, float(limit), window, match)


def parse_budgets(raw: object) -> tuple[list[Budget], list[str]]:
    """The budgets that can be enforced, and an error message for each one that cannot."""
    if raw is None:
        return [], []
    if not isinstance(raw, (list, tuple)):
        return [], [f"`budgets` must be a list of budgets, got {raw!r}"]
    budgets: list[Budget] = []
    errors: list[str] = []
    for index, entry in enumerate(raw):
        try:
            budget = parse_budget(entry, index)
        except BudgetConfigError as error:
            errors.append(str(error))
            continue
        if any(known.name == budget.name for known in budgets):
            errors.append(f"budget {budget.name!r}: the name is used twice; names label errors and metrics")
            continue
        budgets.append(budget)
    return budgets, errors


# --- windows: fixed, UTC-aligned ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Window:
    id: str
    end_s: float | None  # when the window resets; None for `total`


def window_of(window: str, now_s: float) -> Window:
    now = datetime.datetime.fromtimestamp(now_s, datetime.timezone.utc)
    if window == "hour":
        start = now.replace(minute=0, second=0, microsecond=0)
        return Window(f"hour:{start:%Y-%m-%dT%H}", start.timestamp() + 3600)
    if window == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(f"day:{start:%Y-%m-%d}", start.timestamp() + 86400)
    if window == "month":
        days = calendar.monthrange(now.year, now.month)[1]
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return Window(f"month:{start:%Y-%m}", start.timestamp() + days * 86400)
    return Window("total", None)


# --- whom a budget applies to -------------------------------------------------------------------

def scope_value(budget: Budget, request: Request, session_id: str | None = None) -> str | None:
    """The value whose spend this budget counts for the request, or None when the budget does
    not apply to it. Team, key and user are what the proxy's auth resolved (ids first; `match`
    accepts ids or aliases); the session and the end user are the client's."""
    who = request.attribution
    candidates: tuple[str | None, ...]
    if budget.scope == "team":
        candidates = (who.team_id, who.team_alias)
    elif budget.scope == "key":
        candidates = (who.key_hash, who.key_alias)
    elif budget.scope == "user":
        candidates = (who.user_id,)
    elif budget.scope == "end_user":
        candidates = (who.end_user_id,)
    elif budget.scope == "session":
        candidates = (request.session_id or session_id,)
    elif budget.scope == "model_group":
        candidates = (request.model_group if request.model_group != UNKNOWN_GROUP else None,)
    else:
        return "global"
    value = next((found for found in candidates if found), None)
    if value is None or (budget.match is not None and not budget.match.intersection(candidates)):
        return None
    return value


def counter_key(budget: Budget, window: Window, value: str) -> str:
    """The store's key for one budget, window and value (hashed: client-chosen text never
    becomes a key, and keys stay short)."""
    digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]
    return f"{KEY_PREFIX}:{budget.name}:{window.id}:{digest}"


def counter_expiry_s(budget: Budget, window: Window, now_s: float, hold_s: float) -> float | None:
    """When a counter may go: its window's end (plus the longest hold, so a late settlement
    still finds it); a `total` one never, unless its values are the client's."""
    if window.end_s is not None:
        return window.end_s + hold_s
    return now_s + CLIENT_TOTAL_IDLE_S if budget.scope in CLIENT_SCOPES else None


def usd_to_nano(usd: float) -> int:
    return max(0, round(usd * NANO_USD))
