"""Where budget counters live: one process's memory, or a Redis the replicas share.

A counter holds what was spent (settled) and what is reserved (held for requests in flight),
in nano-USD integers. Reserving checks every budget of a request and holds on all of them, or
on none, in one atomic step; settling swaps a request's holds for its real cost. A hold whose
request never settles (its replica died) expires by itself. Times come from the caller, so
windows and expiry can be tested with an injected clock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Hold:
    counter: str
    limit_nano: int
    amount_nano: int
    counter_expires_ms: int | None  # None: the counter never expires


@dataclass(frozen=True, slots=True)
class Charge:
    reservation_id: str  # whose hold on `counter` this replaces
    counter: str
    cost_nano: int
    counter_expires_ms: int | None


@dataclass(frozen=True, slots=True)
class Reservation:
    refused: int | None  # the index of the first hold that did not fit, or None: all are held
    used_nano: tuple[int, ...]  # per hold: spent + reserved before this request's hold


class StoreError(Exception):
    """The store could not be reached or answered nonsense."""


class BudgetStore(Protocol):
    async def reserve(self, reservation_id: str, holds: Sequence[Hold], now_ms: int,
                      hold_expires_ms: int) -> Reservation: ...

    async def settle(self, charges: Sequence[Charge], now_ms: int) -> None:
        """Swap holds for costs: any number of requests' charges in one step."""
        ...

    async def totals(self, counter: str) -> tuple[int, int]:
        """(spent, reserved) of one counter."""
        ...

    async def close(self) -> None: ...


def _fits(used: int, amount: int, limit: int) -> bool:
    # A request always needs some room: one whose estimate is 0 (an unpriced route) is still
    # refused once the budget is used up.
    return used + max(amount, 1) <= limit


# --- one process ---------------------------------------------------------------------------------

@dataclass(slots=True)
class _Counter:
    spent: int = 0
    holds: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (amount, expires_ms)
    expires_ms: int | None = None

    def reserved(self, now_ms: int) -> int:
        for stale in [key for key, (_, expires) in self.holds.items() if expires <= now_ms]:
            del self.holds[stale]
        return sum(amount for amount, _ in self.holds.values())


class InProcessStore:
    """Counters in this process's memory (one proxy process; with several workers or replicas,
    each counts alone: use Redis). Bounded: past `max_counters` the least recently used go."""

    def __init__(self, max_counters: int = 100_000) -> None:
        self.max_counters = max_counters
        self._counters: OrderedDict[str, _Counter] = OrderedDict()
        self._lock = threading.Lock()

    def _counter(self, key: str, now_ms: int) -> _Counter:
        counter = self._counters.get(key)
        if counter is None or (counter.expires_ms is not None and counter.expires_ms <= now_ms):
            counter = self._counters[key] = _Counter()
            while len(self._counters) > self.max_counters:
                self._counters.popitem(last=False)
        self._counters.move_to_end(key)
        return counter

    async def reserve(self, reservation_id: str, holds: Sequence[Hold], now_ms: int,
                      hold_expires_ms: int) -> Reservation:
        with self._lock:
            counters = [self._counter(hold.counter, now_ms) for hold in holds]
            used = tuple(counter.spent + counter.reserved(now_ms) for counter in counters)
            for index, hold in enumerate(holds):
                if not _fits(used[index], hold.amount_nano, hold.limit_nano):
                    return Reservation(index, used)
            for counter, hold in zip(counters, holds, strict=True):
                counter.holds[reservation_id] = (hold.amount_nano, hold_expires_ms)
                counter.expires_ms = hold.counter_expires_ms
            return Reservation(None, used)

    async def settle(self, charges: Sequence[Charge], now_ms: int) -> None:
        with self._lock:
            for charge in charges:
                counter = self._counter(charge.counter, now_ms)
                counter.holds.pop(charge.reservation_id, None)
                counter.spent += charge.cost_nano
                counter.expires_ms = charge.counter_expires_ms

    async def totals(self, counter: str) -> tuple[int, int]:
        with self._lock:
            found = self._counters.get(counter)
            return (found.spent, sum(amount for amount, _ in found.holds.values())) if found else (0, 0)

    async def close(self) -> None:
        return None


# --- Redis: one Lua script per step, so each is atomic across replicas ---------------------------
# Per counter two keys: a hash {spent, reserved, h:<id> = amount} and a sorted set of the hold ids
# scored by their expiry. Expired holds are released before every check.

_RELEASE_EXPIRED = """
local function release_expired(counter, holds, now)
  local stale = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  for _, id in ipairs(stale) do
    local amount = redis.call('HGET', counter, 'h:' .. id)
    if amount then
      redis.call('HINCRBY', counter, 'reserved', 0 - tonumber(amount))  -- never "-0"
      redis.call('HDEL', counter, 'h:' .. id)
    end
  end
  if #stale > 0 then redis.call('ZREMRANGEBYSCORE', holds, '-inf', now) end
end
local function expire(counter, holds, at)
  if tonumber(at) > 0 then
    redis.call('PEXPIREAT', counter, at)
    redis.call('PEXPIREAT', holds, at)
  end
end
"""

# KEYS: counter1, holds1, counter2, holds2, ...  ARGV: id, now_ms, hold_expires_ms, then per
# counter: limit, amount, counter_expires_ms (0: never). Returns {refused index or 0, used...}.
RESERVE_SCRIPT = _RELEASE_EXPIRED + """
local id, now, hold_until = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local n = #KEYS / 2
local used = {}
local refused = 0
for i = 1, n do
  local counter, holds = KEYS[2 * i - 1], KEYS[2 * i]
  release_expired(counter, holds, now)
  local spent = tonumber(redis.call('HGET', counter, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', counter, 'reserved') or '0')
  used[i] = spent + reserved
  local limit, amount = tonumber(ARGV[1 + 3 * i]), tonumber(ARGV[2 + 3 * i])
  if refused == 0 and used[i] + math.max(amount, 1) > limit then refused = i end
end
if refused == 0 then
  for i = 1, n do
    local counter, holds = KEYS[2 * i - 1], KEYS[2 * i]
    local amount = ARGV[2 + 3 * i]
    redis.call('HINCRBY', counter, 'reserved', amount)
    redis.call('HSET', counter, 'h:' .. id, amount)
    redis.call('ZADD', holds, hold_until, id)
    expire(counter, holds, ARGV[3 + 3 * i])
  end
end
return {refused, unpack(used)}
"""

# KEYS as above, one pair per charge. ARGV: now_ms, then per charge: reservation id, cost,
# counter_expires_ms (0: never).
SETTLE_SCRIPT = _RELEASE_EXPIRED + """
local now = tonumber(ARGV[1])
for i = 1, #KEYS / 2 do
  local counter, holds = KEYS[2 * i - 1], KEYS[2 * i]
  local id = ARGV[3 * i - 1]
  local held = redis.call('HGET', counter, 'h:' .. id)
  if held then
    redis.call('HINCRBY', counter, 'reserved', 0 - tonumber(held))
    redis.call('HDEL', counter, 'h:' .. id)
    redis.call('ZREM', holds, id)
  end
  local cost = ARGV[3 * i]
  if tonumber(cost) > 0 then redis.call('HINCRBY', counter, 'spent', cost) end
  release_expired(counter, holds, now)
  expire(counter, holds, ARGV[3 * i + 1])
end
return 1
"""


def _keys(counters: Sequence[str]) -> list[str]:
    return [key for counter in counters for key in (counter, f"{counter}:holds")]


class RedisStore:
    """Counters in Redis, shared by every replica. One round trip per reserve and per settle;
    short timeouts and one immediate retry (a pooled connection Redis closed since, e.g. after
    its restart), so a hung Redis costs a request at most twice `timeout_s`."""

    def __init__(self, url: str, timeout_s: float = 0.5) -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._client: Any = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                                 retry=Retry(NoBackoff(), 1), health_check_interval=0)
        self._reserve = self._client.register_script(RESERVE_SCRIPT)
        self._settle = self._client.register_script(SETTLE_SCRIPT)

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:  # (the socket timeouts bound the wait: no wait_for, whose task costs more than the call)
            return await script(keys=keys, args=args)
        except Exception as error:  # every failure of the store is the caller's StoreError
            raise StoreError(f"{type(error).__name__}: {error}") from error

    async def reserve(self, reservation_id: str, holds: Sequence[Hold], now_ms: int,
                      hold_expires_ms: int) -> Reservation:
        args: list[Any] = [reservation_id, now_ms, hold_expires_ms]
        for hold in holds:
            args += [hold.limit_nano, hold.amount_nano, hold.counter_expires_ms or 0]
        answer = await self._run(self._reserve, _keys([hold.counter for hold in holds]), args)
        try:
            refused, *used = (int(value) for value in answer)
        except (TypeError, ValueError) as error:
            raise StoreError(f"unexpected answer {answer!r}") from error
        return Reservation(refused - 1 if refused else None, tuple(used))

    async def settle(self, charges: Sequence[Charge], now_ms: int) -> None:
        args: list[Any] = [now_ms]
        for charge in charges:
            args += [charge.reservation_id, charge.cost_nano, charge.counter_expires_ms or 0]
        await self._run(self._settle, _keys([charge.counter for charge in charges]), args)

    async def totals(self, counter: str) -> tuple[int, int]:
        try:
            spent, reserved = await self._client.hmget(counter, "spent", "reserved")
        except Exception as error:  # as above
            raise StoreError(f"{type(error).__name__}: {error}") from error
        return int(spent or 0), int(reserved or 0)

    async def close(self) -> None:
        await self._client.aclose()
