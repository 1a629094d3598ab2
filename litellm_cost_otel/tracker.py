"""Bounded in-flight state: which attempts belong to which request, until the request ends.

On the proxy every hook of one request carries the same `proxy_server_request` dict, while
the call id alone is client-settable (`x-litellm-call-id`). A request is therefore keyed by
the call id AND the identity of that dict; the state holds a reference to the dict, so its
identity cannot be reused while the state lives. A second client sending the same call id
gets its own request, never someone else's.

In-process (litellm.Router without the proxy) there is no such dict and each attempt has
its own call id; the router's per-call `litellm_trace_id` groups the attempts instead.

No OpenTelemetry here: finished `Request` records are handed back to the caller to emit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from .record import Attempt, Request

ABANDONED = "abandoned"


@dataclass(slots=True)
class _InFlight:
    request: Request
    anchor: object  # keeps the proxy_server_request dict alive so its id() stays unique
    last_seen_ns: int


def request_key(call_id: str | None, proxy_request: Mapping[str, Any] | None,
                trace_id: str | None) -> Hashable | None:
    if proxy_request is not None and call_id:
        return ("proxy", call_id, id(proxy_request))
    if trace_id:
        return ("sdk", trace_id)
    if call_id:
        return ("call", call_id)
    return None


class RequestTracker:
    """In-flight requests, bounded in number (`max_requests`) and in time since their last
    hook (`idle_timeout_ns`)."""

    def __init__(self, max_requests: int, idle_timeout_ns: int) -> None:
        self.max_requests = max_requests
        self.idle_timeout_ns = idle_timeout_ns
        self._requests: OrderedDict[Hashable, _InFlight] = OrderedDict()
        self._lock = threading.Lock()  # sync hooks of in-process calls run in worker threads

    def __len__(self) -> int:
        return len(self._requests)

    def get(self, key: Hashable, now: int) -> Request | None:
        with self._lock:
            found = self._requests.get(key)
            if found is None:
                return None
            self._touch(key, found, now)
            return found.request

    def _touch(self, key: Hashable, found: _InFlight, now: int) -> None:
        found.last_seen_ns = now
        self._requests.move_to_end(key)  # the front stays the longest idle

    def get_or_start(self, key: Hashable, anchor: object, make: Any, now: int) -> tuple[Request, list[Request]]:
        """The in-flight request for key (made by `make()` if new), plus any requests evicted
        to stay within bounds; the caller emits those as abandoned."""
        with self._lock:
            found = self._requests.get(key)
            if found is not None:
                self._touch(key, found, now)
                return found.request, []
            request = make()
            self._requests[key] = _InFlight(request, anchor, now)
            return request, self._evict(now)

    def finish(self, key: Hashable) -> Request | None:
        with self._lock:
            found = self._requests.pop(key, None)
            return found.request if found else None

    def sweep(self, now: int) -> list[Request]:
        with self._lock:
            return self._evict(now)

    def _evict(self, now: int) -> list[Request]:
        evicted = []
        while self._requests:
            key, idlest = next(iter(self._requests.items()))
            too_many = len(self._requests) > self.max_requests
            if not too_many and now - idlest.last_seen_ns < self.idle_timeout_ns:
                break
            del self._requests[key]
            evicted.append(abandon(idlest.request, now, too_many))
        return evicted


def abandon(request: Request, now: int, for_room: bool) -> Request:
    """End a request that never got its end event.

    With an attempt still open, the request was abandoned (client gone, stream cancelled).
    After a failed attempt it simply failed: in-process, litellm.Router raises to the caller
    without any final hook, so this is how such a request ends."""
    reason = "evicted to bound in-flight state" if for_room else "no hook for longer than the request timeout"
    open_attempt = request.open_attempt
    last = request.attempts[-1] if request.attempts else None
    if open_attempt is not None:
        end_attempt(open_attempt, now, ABANDONED)
    if open_attempt is None and last is not None and last.error_type is not None:
        request.end_ns = last.end_ns or now
        request.error_type = last.error_type
        request.error_description = f"{last.error_type} on the last attempt; {reason}"
        return request
    request.end_ns = now
    request.error_type = ABANDONED
    request.error_description = f"request abandoned: {reason}"
    return request


def end_attempt(attempt: Attempt, end_ns: int, error_type: str | None) -> None:
    attempt.end_ns = end_ns
    attempt.error_type = error_type
    attempt.cost_usd = 0.0 if error_type else attempt.cost_usd
