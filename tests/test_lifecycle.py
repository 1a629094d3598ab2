"""The request lifecycle, transition by transition (pure: no litellm, no OpenTelemetry)."""

from __future__ import annotations

from collections.abc import Callable

from litellm_cost_otel.lifecycle import Lifecycle
from litellm_cost_otel.model import (
    ABANDONED,
    MAX_AGE_NS,
    MAX_AHEAD_NS,
    UNKNOWN_ERROR,
    UNKNOWN_GROUP,
    Answer,
    Attempt,
    Request,
    RequestKey,
    Success,
    Usage,
    plausible_ns,
)

NOW = 1_800_000_000 * 10**9  # the hooks' clock: an ordinary epoch time
KEY = RequestKey("proxy", "call-1", 1)
ANCHOR = object()


def make_request(received: int = NOW, group: str = UNKNOWN_GROUP) -> Callable[[], Request]:
    return lambda: Request(call_id="call-1", received_ns=received, model_group=group)


def attempt(group: str = "fast", deployment: str = "dep-1", call_type: str = "acompletion", depth: int = 0,
            start: int = NOW) -> Attempt:
    return Attempt(number=0, start_ns=start, model_group=group, deployment_id=deployment, call_type=call_type,
                   fallback_depth=depth, call_id="call-1", deployment_model="mistral/mistral-small-latest",
                   provider="mistral")


def no_attempt(start: int) -> Attempt:
    raise AssertionError("an announced attempt answered: no new attempt is made")


def succeed(lifecycle: Lifecycle, now: int, key: RequestKey | None = KEY, **success: object) -> Request:
    return lifecycle.request_succeeded(key, make_request(), no_attempt, Success(**success), now)  # type: ignore[arg-type]


def test_a_plain_answer() -> None:
    lifecycle = Lifecycle(10, 10**12)
    assert lifecycle.attempt_started(KEY, ANCHOR, make_request(NOW - 5), attempt(start=NOW), NOW) == []
    assert len(lifecycle) == 1
    lifecycle.attempt_answered(KEY, Answer(Usage(10, 20, 30), ("stop",), "r-1", "mistral-small-latest"), NOW + 7)
    request = succeed(lifecycle, NOW + 9, cost_usd=0.25)
    assert len(lifecycle) == 0
    (answered,) = request.attempts
    assert answered.number == 1 and answered.cost_usd == 0.25 and answered.usage == Usage(10, 20, 30)
    assert answered.end_ns == NOW + 7 and request.end_ns == NOW + 7  # the answer, not the background event
    assert request.received_ns == NOW - 5 and not request.clock_adjusted
    assert request.model_group == "fast"  # the router's group for a name the configuration did not have
    assert request.error_type is None and request.answering_attempt is answered and request.served_group == "fast"


def test_a_configured_group_asked_for_stays_the_requests_group() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(group="alias-of-fast"), attempt("fast", start=NOW), NOW)
    assert succeed(lifecycle, NOW + 1).model_group == "alias-of-fast"


def test_implausible_receipt_and_end_times_are_replaced_by_the_hooks_clock() -> None:
    for forged in (4102444800 * 10**9, NOW - MAX_AGE_NS - 1, 1):
        lifecycle = Lifecycle(10, 10**12)
        lifecycle.attempt_started(KEY, ANCHOR, make_request(forged), attempt(start=NOW), NOW)
        request = succeed(lifecycle, NOW + 3, end_ns=10**20)
        assert request.received_ns == NOW and request.clock_adjusted
        assert request.attempts[0].start_ns == NOW and request.end_ns == NOW + 3


def test_an_attempt_never_starts_before_its_request() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(NOW + 2 * 10**9), attempt(start=NOW), NOW)
    request = succeed(lifecycle, NOW + 1)
    assert request.attempts[0].start_ns == request.received_ns == NOW + 2 * 10**9
    assert request.end_ns is not None and request.end_ns >= request.received_ns


def test_retry_then_fallback_then_answer() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt("fast-outage", start=NOW), NOW)
    lifecycle.attempt_failed(KEY, "RateLimitError", None, NOW + 1)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt("fast-outage", start=NOW + 2), NOW + 2)
    lifecycle.attempt_failed(KEY, "RateLimitError", None, NOW + 3)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt("capable", depth=1, start=NOW + 4), NOW + 4)
    lifecycle.attempt_answered(KEY, Answer(), NOW + 5)
    request = succeed(lifecycle, NOW + 6, cost_usd=0.5)
    assert [(x.number, x.model_group, x.error_type, x.cost_usd) for x in request.attempts] == [
        (1, "fast-outage", "RateLimitError", 0.0), (2, "fast-outage", "RateLimitError", 0.0), (3, "capable", None, 0.5)]
    assert request.cost_usd == 0.5 and request.fallbacks == 1 and request.served_group == "capable"
    kinds = [(counted.number, kind) for counted, kind in request.transitions()]
    assert kinds == [(2, "retry"), (2, "fallback")]  # the retry under attempt 2, the hop from attempt 2


def test_a_late_failure_event_never_closes_a_later_attempt() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_failed(KEY, "RateLimitError", None, NOW + 10)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW + 20), NOW + 20)
    # The log event of the first failure, ended before the second attempt started, arrives now.
    lifecycle.attempt_failed(KEY, "RateLimitError", NOW + 10, NOW + 25)
    request = succeed(lifecycle, NOW + 30)
    assert [x.error_type for x in request.attempts] == ["RateLimitError", None]


def test_an_attempt_started_while_one_is_open_closes_it_as_failed() -> None:
    """A stream that failed midway fires no failure hook before litellm retries it."""
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW + 4), NOW + 4)
    request = succeed(lifecycle, NOW + 9, stream=True)
    assert [(x.error_type, x.end_ns) for x in request.attempts] == [(UNKNOWN_ERROR, NOW + 4), (None, NOW + 9)]


def test_an_inner_call_of_the_same_attempt_is_not_an_attempt() -> None:
    """/v1/messages on an OpenAI-style deployment calls litellm's Responses API inside the
    attempt: a second deployment hook, same deployment, other call type."""
    lifecycle = Lifecycle(10, 10**12)
    outer, inner = attempt(call_type="anthropic_messages", start=NOW), attempt(call_type="aresponses", start=NOW + 1)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), outer, NOW)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), inner, NOW + 1)
    assert len(succeed(lifecycle, NOW + 2).attempts) == 1


def test_in_process_pre_api_call_twin_is_the_same_attempt() -> None:
    key = RequestKey("router", "trace-1")
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(key, None, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_started(key, None, make_request(), attempt(start=NOW + 1), NOW + 1)  # same call id: the twin
    assert len(succeed(lifecycle, NOW + 2, key=key).attempts) == 1


def test_an_answer_no_attempt_hook_announced_gets_its_own_attempt() -> None:
    """A cache hit: only the success event fires."""
    lifecycle = Lifecycle(10, 10**12)
    request = lifecycle.request_succeeded(KEY, make_request(NOW - 5), lambda start: attempt(group="", start=start),
                                          Success(start_ns=NOW - 3, end_ns=NOW - 1, model_group="fast"), NOW)
    (only,) = request.attempts
    assert only.start_ns == NOW - 3 and only.end_ns == NOW - 1 and only.model_group == "fast"
    assert request.model_group == "fast" and request.error_type is None


def test_final_failure_closes_the_open_attempt() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    request = lifecycle.request_failed(KEY, make_request(), "ServiceUnavailableError", NOW + 5)
    assert request.error_type == "ServiceUnavailableError" and request.end_ns == NOW + 5
    assert request.attempts[0].error_type == "ServiceUnavailableError" and request.served_group is None
    assert len(lifecycle) == 0


def test_a_request_that_never_reached_a_deployment() -> None:
    lifecycle = Lifecycle(10, 10**12)
    request = lifecycle.request_failed(None, make_request(), "BadRequestError", NOW)
    assert request.attempts == [] and request.model_group == UNKNOWN_GROUP and request.error_type == "BadRequestError"


def test_streams_time_the_first_chunk_inside_the_attempt() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(NOW - 10**9), attempt(start=NOW), NOW)
    request = succeed(lifecycle, NOW + 3 * 10**9, stream=True, end_ns=NOW + 2 * 10**9,
                      first_chunk_ns=NOW + 5 * 10**8, api_call_start_ns=NOW + 10**8)
    (streamed,) = request.attempts
    assert streamed.stream and streamed.end_ns == NOW + 2 * 10**9
    assert streamed.time_to_first_chunk_s == 0.4 and request.time_to_first_chunk_s == 1.5
    # A first chunk outside the attempt is no first chunk.
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    request = succeed(lifecycle, NOW + 10, stream=True, first_chunk_ns=NOW + 10**15)
    assert request.attempts[0].time_to_first_chunk_s is None and request.time_to_first_chunk_s is None


def test_idle_requests_are_abandoned_and_an_open_attempt_with_them() -> None:
    lifecycle = Lifecycle(10, idle_timeout_ns=100)
    other = RequestKey("proxy", "call-2", 2)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    later = NOW + 1000
    abandoned = lifecycle.attempt_started(other, ANCHOR, make_request(), attempt(start=later), later)
    (request,) = abandoned
    assert request.error_type == ABANDONED and request.attempts[0].error_type == ABANDONED
    assert request.end_ns == later and len(lifecycle) == 1


def test_an_idle_request_after_a_failed_attempt_ends_as_failed() -> None:
    """In-process, litellm.Router raises to its caller with no final hook."""
    lifecycle = Lifecycle(10, idle_timeout_ns=100)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_failed(KEY, "RateLimitError", None, NOW + 5)
    (request,) = lifecycle.sweep(NOW + 1000)
    assert request.error_type == "RateLimitError" and request.end_ns == NOW + 5


def test_in_flight_requests_are_bounded_in_number() -> None:
    lifecycle = Lifecycle(max_requests=2, idle_timeout_ns=10**12)
    evicted = []
    for number in range(3):
        key = RequestKey("proxy", f"call-{number}", number)
        now = NOW + number
        evicted += lifecycle.attempt_started(key, ANCHOR, make_request(), attempt(start=now), now)
    assert len(lifecycle) == 2 and [r.attempts[0].start_ns for r in evicted] == [NOW]
    assert evicted[0].error_type == ABANDONED


def test_activity_keeps_a_request_alive() -> None:
    lifecycle = Lifecycle(10, idle_timeout_ns=100)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_answered(KEY, Answer(), NOW + 90)
    assert lifecycle.sweep(NOW + 150) == [] and len(lifecycle.sweep(NOW + 200)) == 1


# --- what each transition leaves behind, exactly -------------------------------------------------

def test_an_answer_fills_what_it_tells_and_keeps_what_it_does_not() -> None:
    answered = attempt()
    answered.apply(Answer(Usage(1, 2, 3), ("stop",), "r-1", "m-1"))
    answered.apply(Answer())  # a later, emptier answer (the success event of a stream) takes nothing away
    assert (answered.usage, answered.finish_reasons, answered.response_id, answered.response_model) == (
        Usage(1, 2, 3), ("stop",), "r-1", "m-1")
    answered.apply(Answer(None, ("length",), "r-2", "m-2"))
    assert (answered.finish_reasons, answered.response_id, answered.response_model) == (("length",), "r-2", "m-2")
    embedding = Attempt(number=1, start_ns=0, operation="embeddings")
    embedding.apply(Answer(Usage(9, 0, 9)))
    assert embedding.usage == Usage(9, None, 9)  # litellm's 0 output tokens: embeddings have none
    chat = Attempt(number=1, start_ns=0)
    chat.apply(Answer(Usage(9, 0, 9)))
    assert chat.usage == Usage(9, 0, 9)


def test_abandoned_requests_say_why() -> None:
    lifecycle = Lifecycle(max_requests=1, idle_timeout_ns=100)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    other = RequestKey("proxy", "call-2", 2)
    (evicted,) = lifecycle.attempt_started(other, ANCHOR, make_request(), attempt(start=NOW + 1), NOW + 1)
    assert evicted.error_description == "request abandoned: evicted to bound in-flight state"
    lifecycle.attempt_failed(other, "RateLimitError", None, NOW + 2)
    (idle,) = lifecycle.sweep(NOW + 200)
    assert idle.error_description == "RateLimitError on the last attempt; no hook for longer than the request timeout"
    never_attempted = Request(call_id="c", received_ns=NOW)
    never_attempted.abandon(NOW + 5, "gone")
    assert (never_attempted.error_type, never_attempted.end_ns) == (ABANDONED, NOW + 5)


def test_a_request_that_failed_says_how() -> None:
    request = Request(call_id="c", received_ns=NOW)
    request.finish(NOW - 10, "X", "why")
    assert (request.end_ns, request.error_type, request.error_description) == (NOW, "X", "why")


def test_retries_and_hops_after_an_answer_are_none() -> None:
    """Only an attempt after a failed one is a retry or a hop; later failures are still seen."""
    answered, failed, retried = attempt(), attempt(), attempt()
    answered.end(NOW, None)
    failed.end(NOW, "RateLimitError")
    request = Request(call_id="c", received_ns=NOW, attempts=[answered, failed, retried])
    assert request.transitions() == [(retried, "retry")]


def test_the_plausible_window_includes_its_edges() -> None:
    assert plausible_ns(NOW - MAX_AGE_NS, NOW) == NOW - MAX_AGE_NS
    assert plausible_ns(NOW + MAX_AHEAD_NS, NOW) == NOW + MAX_AHEAD_NS
    assert plausible_ns(NOW + MAX_AHEAD_NS + 1, NOW) is None and plausible_ns(None, NOW) is None


def test_each_new_request_ends_those_idle_too_long() -> None:
    lifecycle = Lifecycle(10, idle_timeout_ns=100)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    other, third = RequestKey("proxy", "call-2", 2), RequestKey("proxy", "call-3", 3)
    assert lifecycle.attempt_started(other, ANCHOR, make_request(), attempt(start=NOW + 99), NOW + 99) == []
    (idle,) = lifecycle.attempt_started(third, ANCHOR, make_request(), attempt(start=NOW + 100), NOW + 100)
    assert idle.attempts[0].start_ns == NOW and len(lifecycle) == 2


def test_a_failure_at_the_attempts_own_start_closes_it() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_failed(KEY, "Timeout", NOW, NOW + 1)
    assert lifecycle.request_failed(KEY, make_request(), "Timeout", NOW + 2).attempts[0].end_ns == NOW


def test_the_success_event_completes_the_answering_attempt() -> None:
    """The deployment it names fills what the attempt hook did not; a response model that is
    only the group's name becomes the deployment's model."""
    lifecycle = Lifecycle(10, 10**12)
    announced = Attempt(number=0, start_ns=NOW, model_group="fast", deployment_model="mistral/mistral-small-latest",
                        provider=None, call_id="call-1")
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), announced, NOW)
    lifecycle.attempt_answered(KEY, Answer(response_model="fast"), NOW + 1)
    request = succeed(lifecycle, NOW + 2, deployment_id="dep-9", provider="mistral", api_base="https://x/v1")
    (done,) = request.attempts
    assert (done.deployment_id, done.provider, done.api_base) == ("dep-9", "mistral", "https://x/v1")
    assert done.response_model == "mistral-small-latest"
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_answered(KEY, Answer(response_model="mistral-small-2409"), NOW + 1)
    kept = succeed(lifecycle, NOW + 2, deployment_id="other", provider="other", api_base="other").attempts[0]
    assert kept.response_model == "mistral-small-2409"  # a real model name stays
    assert (kept.deployment_id, kept.provider) == ("dep-1", "mistral")  # the attempt hook's own win


def test_an_answer_after_a_failed_attempt_is_a_new_attempt() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_failed(KEY, "RateLimitError", None, NOW + 1)
    request = lifecycle.request_succeeded(KEY, make_request(), lambda start: attempt(group="fast", start=start),
                                          Success(start_ns=NOW + 2, end_ns=NOW + 3, cost_usd=0.5), NOW + 4)
    assert [(x.error_type, x.cost_usd) for x in request.attempts] == [("RateLimitError", 0.0), (None, 0.5)]
    # A cache hit on a request that already has a group keeps it.
    lifecycle.attempt_started(KEY, ANCHOR, make_request(group="asked"), attempt(group="fast", start=NOW), NOW)
    lifecycle.attempt_failed(KEY, "RateLimitError", None, NOW + 1)
    hit = lifecycle.request_succeeded(KEY, make_request(), lambda start: attempt(group="other", start=start),
                                      Success(), NOW + 4)
    assert hit.model_group == "asked"


def test_an_implausible_time_is_flagged_only_when_one_was_given() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    assert not succeed(lifecycle, NOW + 1).clock_adjusted  # no end time given: the hook's clock, no flag
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    assert succeed(lifecycle, NOW + 1, stream=True, end_ns=1).clock_adjusted


def test_times_to_first_chunk_at_the_edges() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(NOW), attempt(start=NOW), NOW)
    at_start = succeed(lifecycle, NOW + 10, stream=True, end_ns=NOW + 8, first_chunk_ns=NOW, api_call_start_ns=NOW)
    assert at_start.attempts[0].time_to_first_chunk_s == 0.0
    lifecycle.attempt_started(KEY, ANCHOR, make_request(NOW), attempt(start=NOW), NOW)
    at_end = succeed(lifecycle, NOW + 10, stream=True, end_ns=NOW + 8, first_chunk_ns=NOW + 8,
                     api_call_start_ns=NOW + 8)
    assert at_end.attempts[0].time_to_first_chunk_s == 0.0 and at_end.time_to_first_chunk_s == 8e-9
    # A provider call start outside the attempt: the attempt's start is the reference.
    lifecycle.attempt_started(KEY, ANCHOR, make_request(NOW), attempt(start=NOW), NOW)
    outside = succeed(lifecycle, NOW + 10, stream=True, end_ns=NOW + 8, first_chunk_ns=NOW + 4,
                      api_call_start_ns=NOW - 3)
    assert outside.attempts[0].time_to_first_chunk_s == 4e-9


def test_the_tracker_keeps_the_proxys_request_dict_alive() -> None:
    """Its id() keys the request: it must not be freed (and reused) while the state lives."""
    import sys

    anchor: dict[str, object] = {}
    before = sys.getrefcount(anchor)
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, anchor, make_request(), attempt(start=NOW), NOW)
    assert sys.getrefcount(anchor) == before + 1
    succeed(lifecycle, NOW + 1)
    assert sys.getrefcount(anchor) == before


def test_activity_refreshes_a_known_request() -> None:
    lifecycle = Lifecycle(10, idle_timeout_ns=100)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_failed(KEY, "X", None, NOW + 1)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW + 90), NOW + 90)  # a retry: activity
    assert lifecycle.sweep(NOW + 150) == []
    assert lifecycle.sweep(NOW + 190) != []  # exactly the timeout after the last hook: idle


def test_an_implausible_receipt_alone_is_flagged() -> None:
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(NOW + MAX_AHEAD_NS + 1), attempt(start=NOW), NOW)
    lifecycle.attempt_answered(KEY, Answer(), NOW + 1)
    request = succeed(lifecycle, NOW + 2)
    assert request.clock_adjusted and request.received_ns == NOW


def test_only_the_first_routed_attempt_names_an_unknown_request_group() -> None:
    """A request whose first attempt named no group keeps `_unknown`, whatever answers later."""
    lifecycle = Lifecycle(10, 10**12)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(group="", start=NOW), NOW)
    lifecycle.attempt_failed(KEY, "X", None, NOW + 1)
    request = lifecycle.request_succeeded(KEY, make_request(), lambda start: attempt(group="fast", start=start),
                                          Success(), NOW + 2)
    assert request.model_group == UNKNOWN_GROUP


class CountingReader:
    """A response reader that counts its reads (responses here are Answers already)."""

    def __init__(self) -> None:
        self.read: list[object] = []

    def __call__(self, response: object) -> Answer:
        self.read.append(response)
        return response if isinstance(response, Answer) else Answer()


def test_an_answer_the_success_event_brings_again_is_read_once() -> None:
    reader = CountingReader()
    lifecycle = Lifecycle(10, 10**12, reader)
    response = Answer(Usage(3, 2, 5), ("stop",), "r-1", "fast")  # renamed to the group by the proxy meanwhile
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_answered(KEY, response, NOW + 1)
    assert reader.read == []  # not yet: the success event usually brings the same object
    (done,) = succeed(lifecycle, NOW + 2, response=response, cost_usd=0.5).attempts
    assert reader.read == [response]
    assert (done.usage, done.finish_reasons, done.response_id) == (Usage(3, 2, 5), ("stop",), "r-1")
    assert done.response_model == "mistral-small-latest" and done.answered_by is None


def test_a_different_answer_at_the_end_is_read_after_the_attempts_own() -> None:
    """E.g. /v1/messages: the deployment's chat answer, then the translated one: both read, the
    later one winning where it tells something."""
    reader = CountingReader()
    lifecycle = Lifecycle(10, 10**12, reader)
    deployments = Answer(Usage(3, 2, 5), ("stop",), "chatcmpl-1", "mistral-small-2409")
    translated = Answer(None, ("stop",), "msg-1", None)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_answered(KEY, deployments, NOW + 1)
    (done,) = succeed(lifecycle, NOW + 2, response=translated).attempts
    assert reader.read == [deployments, translated]
    assert (done.usage, done.response_id, done.response_model) == (Usage(3, 2, 5), "msg-1", "mistral-small-2409")


def test_an_answer_is_read_when_its_request_fails_or_is_abandoned_instead() -> None:
    reader = CountingReader()
    lifecycle = Lifecycle(1, 10**12, reader)
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_answered(KEY, Answer(Usage(3, 2, 5)), NOW + 1)  # then a post-call check refuses it
    failed = lifecycle.request_failed(KEY, make_request(), "GuardrailRaisedException", NOW + 2)
    assert failed.attempts[0].usage == Usage(3, 2, 5) and failed.error_type == "GuardrailRaisedException"
    lifecycle.attempt_started(KEY, ANCHOR, make_request(), attempt(start=NOW), NOW)
    lifecycle.attempt_answered(KEY, Answer(Usage(7, 1, 8)), NOW + 1)
    other = RequestKey("proxy", "call-2", 2)
    (evicted,) = lifecycle.attempt_started(other, ANCHOR, make_request(), attempt(start=NOW + 3), NOW + 3)
    assert evicted.attempts[0].usage == Usage(7, 1, 8) and evicted.attempts[0].answered_by is None
    assert len(reader.read) == 2
