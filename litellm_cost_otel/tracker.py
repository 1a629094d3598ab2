"""Bounded in-flight state: the requests whose hooks are still to come, by `RequestKey`.

On the proxy every hook of one request carries the same `proxy_server_request` dict, while
the call id alone is client-settable (`x-litellm-call-id`). A request is therefore keyed by
the call id AND the identity of that dict; the state holds a reference to the dict, so its
identity cannot be reused while the state lives. A second client sending the same call id
gets its own request, never someone else's.

No litellm and no OpenTelemetry here: requests evicted to stay within bounds are handed back
(already abandoned) for the caller to emit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .model import Request, RequestKey


@dataclass(slots=True)
class _InFlight:
    request: Request
    anchor: object  # keeps the proxy_server_request dict alive so its id() stays unique
    last_seen_ns: int


class RequestTracker:
    """In-flight requests, bounded in number (`max_requests`) and in time since their last
    hook (`idle_timeout_ns`)."""

    def __init__(self, max_requests: int, idle_timeout_ns: int) -> None:
        self.max_requests = max_requests
        self.idle_timeout_ns = idle_timeout_ns
        self._requests: OrderedDict[RequestKey, _InFlight] = OrderedDict()
        self._lock = threading.Lock()  # sync hooks of in-process calls run in worker threads

    def __len__(self) -> int:
        return len(self._requests)

    def get(self, key: RequestKey, now: int) -> Request | None:
        with self._lock:
            found = self._requests.get(key)
            if found is None:
                return None
            self._touch(key, found, now)
            return found.request

    def _touch(self, key: RequestKey, found: _InFlight, now: int) -> None:
        found.last_seen_ns = now
        self._requests.move_to_end(key)  # the front stays the longest idle

    def get_or_start(self, key: RequestKey, anchor: object, make: Callable[[], Request],
                     now: int) -> tuple[Request, list[Request]]:
        """The in-flight request for key (made by `make()` if new), plus any requests evicted
        to stay within bounds; the caller emits those."""
        with self._lock:
            found = self._requests.get(key)
            if found is not None:
                self._touch(key, found, now)
                return found.request, []
            request = make()
            self._requests[key] = _InFlight(request, anchor, now)
            return request, self._evict(now)

    def finish(self, key: RequestKey | None) -> Request | None:
        if key is None:
            return None
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
            idlest.request.abandon(now, "evicted to bound in-flight state" if too_many
                                   else "no hook for longer than the request timeout")
            evicted.append(idlest.request)
        return evicted
