"""The request lifecycle: when attempts and requests start, end, fail late or are abandoned.

Each method takes what `readers.py` made of one hook (and the hook's own clock, `now`) and
returns the requests that are finished, for the caller to emit. No litellm and no
OpenTelemetry here, so every transition is unit-tested directly (tests/test_lifecycle.py).

Times the hooks report are checked here: a receipt, start or end time outside the plausible
window around the hook's clock is replaced by that clock, and the request says so
(`clock_adjusted`); an attempt never starts before its request, nor ends before it starts.
"""

from __future__ import annotations

from collections.abc import Callable

from .model import UNKNOWN_ERROR, UNKNOWN_GROUP, Answer, Attempt, Request, RequestKey, Success, plausible_ns
from .tracker import RequestTracker


def _given_answer(response: object) -> Answer:
    return response if isinstance(response, Answer) else Answer()


class Lifecycle:
    """`read_answer` turns a response into an `Answer` (readers.answer_of on the proxy; the
    default takes Answers as they are, for the unit tests)."""

    def __init__(self, max_requests: int, idle_timeout_ns: int,
                 read_answer: Callable[[object], Answer] = _given_answer) -> None:
        self.tracker = RequestTracker(max_requests, idle_timeout_ns)
        self.read_answer = read_answer

    def __len__(self) -> int:
        return len(self.tracker)

    # --- before the first attempt --------------------------------------------------------------

    def request_received(self, key: RequestKey, anchor: object, make_request: Callable[[], Request],
                         now: int) -> tuple[Request, list[Request]]:
        """The proxy's pre-call hook (only when budgets need the request that early): the
        request starts, its attempts come later; returns it and the requests abandoned meanwhile."""
        request, finished = self.tracker.get_or_start(key, anchor, lambda: self._started(make_request, now), now)
        return request, self._answers_read(finished)

    # --- one attempt -----------------------------------------------------------------------

    def attempt_started(self, key: RequestKey, anchor: object, make_request: Callable[[], Request],
                        attempt: Attempt, now: int) -> list[Request]:
        """An attempt starts (first try, retry or fallback hop); returns requests abandoned
        meanwhile (each new request evicts those beyond the bounds or idle too long)."""
        request, finished = self.tracker.get_or_start(key, anchor, lambda: self._started(make_request, now), now)
        finished = self._answers_read(finished)
        open_attempt = request.open_attempt
        if open_attempt is not None:
            if open_attempt.call_id == attempt.call_id and key.scope != "proxy":
                return finished  # in-process: the pre-API-call twin of the deployment hook
            if open_attempt.deployment_id == attempt.deployment_id and open_attempt.call_type != attempt.call_type:
                return finished  # the same attempt's own inner call (e.g. /v1/messages bridged)
            # The previous attempt ended without a failure hook (it failed inside a stream).
            open_attempt.end(now, UNKNOWN_ERROR)
        if not request.attempts and request.model_group == UNKNOWN_GROUP and attempt.model_group:
            request.model_group = attempt.model_group  # routed: the group the router matched
        request.start_attempt(attempt)
        return finished

    def attempt_answered(self, key: RequestKey, response: object, now: int) -> None:
        """A non-streaming attempt answered (its cost comes with the success event). The
        response is read when the request ends: the success event usually brings the same."""
        attempt = self._open_attempt(key, now)
        if attempt is not None:
            attempt.answered_by = response
            attempt.end(now, None)

    def attempt_failed(self, key: RequestKey, error_type: str, end_ns: int | None, now: int) -> None:
        attempt = self._open_attempt(key, now)
        end = plausible_ns(end_ns, now) or now
        # A log event can arrive late; never let it close a later attempt than its own.
        if attempt is not None and attempt.start_ns <= end:
            attempt.end(end, error_type)

    # --- the end of a request ---------------------------------------------------------------

    def request_succeeded(self, key: RequestKey | None, make_request: Callable[[], Request],
                          make_attempt: Callable[[int], Attempt], success: Success, now: int) -> Request:
        """The answer is complete: litellm's cost, and for streams the last chunk's time."""
        request = self._finished(key, make_request, now)
        last = request.last_attempt  # the open attempt, or the one that answered; not a failed one
        attempt = last if last is not None and last.error_type is None else None
        if attempt is None:  # an answer no attempt hook announced (e.g. a cache hit)
            start = self._checked(request, success.start_ns, now)
            attempt = make_attempt(start)
            attempt.model_group = attempt.model_group or success.model_group
            if request.model_group == UNKNOWN_GROUP and not request.attempts and attempt.model_group:
                request.model_group = attempt.model_group
            request.start_attempt(attempt)
        if attempt.answered_by is success.response:
            attempt.answered_by = None  # the same answer: read once, below
        self._answers_read([request])  # what the attempt hooks saw of other answers (e.g. before translation)
        attempt.apply(self.read_answer(success.response))
        attempt.cost_usd = success.cost_usd
        attempt.deployment_id = attempt.deployment_id or success.deployment_id
        attempt.provider = attempt.provider or success.provider
        attempt.api_base = attempt.api_base or success.api_base
        if attempt.response_model in (attempt.model_group, request.model_group, request.requested_model):
            # The proxy renames the response's model to the group asked for; a group is not a
            # model, so report the model the deployment was asked for instead.
            attempt.response_model = attempt.request_model
        attempt.usage = attempt.usage or success.logged_usage  # e.g. a stream that sent no usage chunk
        end = self._checked(request, success.end_ns, now)
        if attempt.end_ns is None:
            attempt.end(end, None)
        if success.stream:
            attempt.stream = True
            self._time_first_chunk(request, attempt, success)
        request.finish(attempt.end_ns or end)
        return request

    def request_failed(self, key: RequestKey | None, make_request: Callable[[], Request], error_type: str,
                       now: int) -> Request:
        """The proxy answers with an error (also: unknown model, no attempt at all)."""
        request = self._finished(key, make_request, now)
        self._answers_read([request])
        if request.open_attempt is not None:
            request.open_attempt.end(now, error_type)
        request.finish(now, error_type)
        return request

    def sweep(self, now: int) -> list[Request]:
        return self._answers_read(self.tracker.sweep(now))

    # --- helpers ---------------------------------------------------------------------------

    def _started(self, make_request: Callable[[], Request], now: int) -> Request:
        request = make_request()
        received = plausible_ns(request.received_ns, now)
        if received is None:
            request.received_ns, request.clock_adjusted = now, True
        return request

    def _finished(self, key: RequestKey | None, make_request: Callable[[], Request], now: int) -> Request:
        """The request's in-flight record, taken out of the tracker; a fresh one when no
        attempt hook announced it (a cache hit, an unknown model)."""
        return self.tracker.finish(key) or self._started(make_request, now)

    def _open_attempt(self, key: RequestKey, now: int) -> Attempt | None:
        request = self.tracker.get(key, now)
        return request.open_attempt if request is not None else None

    def _answers_read(self, requests: list[Request]) -> list[Request]:
        """The answers the requests' attempts saw and nothing read yet (also of requests that
        end without their success event: failed or abandoned after an attempt answered)."""
        for request in requests:
            for attempt in request.attempts:
                if attempt.answered_by is not None:
                    response, attempt.answered_by = attempt.answered_by, None
                    attempt.apply(self.read_answer(response))
        return requests

    @staticmethod
    def _checked(request: Request, time_ns: int | None, now: int) -> int:
        """A reported time if plausible, else the hook's clock (and the request says so)."""
        checked = plausible_ns(time_ns, now)
        if checked is None:
            request.clock_adjusted = request.clock_adjusted or time_ns is not None
            return now
        return checked

    @staticmethod
    def _time_first_chunk(request: Request, attempt: Attempt, success: Success) -> None:
        first_chunk = success.first_chunk_ns
        end = attempt.end_ns or request.received_ns
        if first_chunk is None or not attempt.start_ns <= first_chunk <= end:
            return  # no first chunk, or one outside the attempt: no time to first chunk
        api_start = success.api_call_start_ns
        if api_start is None or not attempt.start_ns <= api_start <= first_chunk:
            api_start = attempt.start_ns
        attempt.time_to_first_chunk_s = (first_chunk - api_start) / 1e9
        request.time_to_first_chunk_s = (first_chunk - request.received_ns) / 1e9
