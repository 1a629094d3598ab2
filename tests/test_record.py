"""Fast unit tests of the pure steps: hook arguments -> records, the tracker, the mappers."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from litellm_cost_otel import attributes as a
from litellm_cost_otel import record
from litellm_cost_otel.record import Attempt, Request, Usage
from litellm_cost_otel.tracker import ABANDONED, RequestTracker, request_key

RECEIVED = datetime.datetime(2026, 11, 28, 12, 0, 0, tzinfo=datetime.timezone.utc)


def deployment_kwargs(**overrides: Any) -> dict[str, Any]:
    kwargs = {
        "litellm_call_id": "call-1",
        "litellm_trace_id": "trace-1",
        "model": "mistral/mistral-small-latest",
        "model_info": {"id": "dep-123"},
        "proxy_server_request": {"body": {"model": "fast"}},
        "stream": False,
        "metadata": {"model_group": "fast", "litellm_received_at": RECEIVED, "attempted_fallbacks": 0,
                     "headers": {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}},
    }
    kwargs.update(overrides)
    return kwargs


def test_new_attempt_reads_the_deployment_hook_kwargs() -> None:
    attempt = record.new_attempt(deployment_kwargs(fallback_depth=2), 3, "acompletion", 5)
    assert attempt.number == 3 and attempt.start_ns == 5
    assert attempt.model_group == "fast"
    assert attempt.deployment_id == "dep-123"
    assert attempt.provider == "mistral"
    assert attempt.request_model == "mistral-small-latest"
    assert attempt.fallback_depth == 2
    assert attempt.operation == "chat"
    assert record.new_attempt(deployment_kwargs(), 1, "aembedding", 0).operation == "embeddings"


def test_request_readers() -> None:
    kwargs = deployment_kwargs()
    assert record.requested_group_of(kwargs) == "fast"
    assert record.received_ns_of(kwargs) == int(RECEIVED.timestamp() * 1e9)
    assert record.parent_hint_of(kwargs) == kwargs["metadata"]["headers"]
    proxy_span = object()
    kwargs["metadata"]["litellm_parent_otel_span"] = proxy_span
    assert record.parent_hint_of(kwargs) is proxy_span
    # Log events carry the same facts under litellm_params.
    event = {"litellm_params": {"metadata": kwargs["metadata"], "proxy_server_request": kwargs["proxy_server_request"]}}
    assert record.proxy_request_of(event) is kwargs["proxy_server_request"]
    assert record.received_ns_of(event) == int(RECEIVED.timestamp() * 1e9)


def test_usage_from_objects_and_dicts() -> None:
    response = {"id": "r1", "model": "m", "usage": {
        "prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 40}, "completion_tokens_details": {"reasoning_tokens": 7}},
        "choices": [{"finish_reason": "stop"}, {"finish_reason": "length"}]}
    assert record.usage_of(response) == Usage(100, 50, 150, 40, None, 7)
    assert record.finish_reasons_of(response) == ("stop", "length")
    assert record.usage_of({"usage": None}) is None
    assert record.usage_of({"usage": {"prompt_tokens": "many"}}) is None


def test_success_event_completes_the_answering_attempt() -> None:
    attempt = Attempt(number=1, start_ns=1_000_000_000, model_group="fast", provider="mistral",
                      deployment_model="mistral/mistral-small-latest")
    request = Request(call_id="c", received_ns=0, requested_group="fast", attempts=[attempt])
    started = datetime.datetime.fromtimestamp(1.0)
    kwargs = {"response_cost": 0.25, "stream": True, "api_call_start_time": started,
              "completion_start_time": started + datetime.timedelta(seconds=0.3),
              "standard_logging_object": {"model_group": "fast", "hidden_params": {"api_base": "https://x.ai/v1"}}}
    response = {"id": "r", "model": "fast", "usage": {"prompt_tokens": 3, "completion_tokens": 4},
                "choices": [{"finish_reason": "stop"}]}
    record.apply_success_event(request, attempt, kwargs, response, 2_000_000_000)
    assert attempt.cost_usd == 0.25 and request.cost_usd == 0.25
    assert abs(attempt.time_to_first_chunk_s - 0.3) < 1e-6
    assert abs(request.time_to_first_chunk_s - 1.3) < 1e-6
    assert attempt.response_model == "mistral-small-latest"  # not the group the proxy renamed it to
    assert request.served_group == "fast" and request.end_ns == 2_000_000_000
    assert record.server_address_of(attempt.api_base) == ("x.ai", 443)


def test_cost_is_never_nan_or_a_string() -> None:
    assert record.cost_of({"response_cost": float("nan")}) is None
    assert record.cost_of({"response_cost": "0.1"}) is None
    assert record.cost_of({"response_cost": None, "standard_logging_object": {"response_cost": 0.5}}) == 0.5


def test_keys_separate_same_call_id_on_different_proxy_requests() -> None:
    first, second = {"body": {}}, {"body": {}}
    assert request_key("same", first, "t") != request_key("same", second, "t")
    assert request_key("same", first, "t") == request_key("same", first, "other")
    assert request_key(None, None, "trace") == ("sdk", "trace")
    assert request_key(None, None, None) is None


def test_tracker_bounds_in_flight_requests_by_count_and_idle_time() -> None:
    tracker = RequestTracker(max_requests=2, idle_timeout_ns=100)
    evicted_all = []
    for number in range(3):
        request, evicted = tracker.get_or_start(("k", number), None,
                                                lambda n=number: Request(call_id=str(n), received_ns=n), number)
        request.attempts.append(Attempt(number=1, start_ns=number))
        evicted_all += evicted
    assert len(tracker) == 2
    assert [r.call_id for r in evicted_all] == ["0"]
    assert evicted_all[0].error_type == ABANDONED and evicted_all[0].attempts[0].error_type == ABANDONED
    tracker.get(("k", 1), 150)  # activity keeps a request alive
    swept = tracker.sweep(now=200)
    assert [r.call_id for r in swept] == ["2"] and len(tracker) == 1
    assert [r.call_id for r in tracker.sweep(now=10_000)] == ["1"]


def test_idle_request_after_a_failed_attempt_ends_as_failed() -> None:
    tracker = RequestTracker(max_requests=10, idle_timeout_ns=10)
    request, _ = tracker.get_or_start("k", None, lambda: Request(call_id="c", received_ns=0), 0)
    request.attempts.append(Attempt(number=1, start_ns=0, end_ns=5, error_type="RateLimitError"))
    (ended,) = tracker.sweep(now=100)
    assert ended.error_type == "RateLimitError" and ended.end_ns == 5


def test_summing_rule_cost_and_tokens_on_exactly_one_span_kind() -> None:
    answered = Attempt(number=2, start_ns=0, end_ns=1, cost_usd=0.5, usage=Usage(10, 20, 30))
    failed = Attempt(number=1, start_ns=0, end_ns=1, error_type="RateLimitError")
    request = Request(call_id="c", received_ns=0, end_ns=1, attempts=[failed, answered])
    request_attrs = a.request_attributes(request)
    attempt_attrs = [a.attempt_attributes(x) for x in request.attempts]
    assert request_attrs[a.COST_USD] == 0.5
    assert a.COST_USD not in attempt_attrs[0] and a.COST_USD not in attempt_attrs[1]
    assert sum(x[a.GEN_AI_USAGE_COST_AMOUNT] for x in attempt_attrs) == 0.5
    assert a.GEN_AI_USAGE_COST_AMOUNT not in request_attrs
    for name in (a.GEN_AI_USAGE_INPUT_TOKENS, a.LLM_TOKEN_COUNT_PROMPT, a.LLM_TOKEN_COUNT_TOTAL):
        assert name not in request_attrs and name not in attempt_attrs[0]
        assert name in attempt_attrs[1]


# Odd, nested values of the kinds hooks may carry.
odd_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
hook_kwargs = st.dictionaries(
    st.sampled_from(["litellm_call_id", "litellm_trace_id", "model", "model_info", "metadata", "litellm_params",
                     "proxy_server_request", "stream", "fallback_depth", "response_cost", "standard_logging_object",
                     "completion_start_time", "api_call_start_time", "custom_llm_provider", "api_base"]),
    odd_values, max_size=10)


@settings(max_examples=300, deadline=None)
@given(kwargs=hook_kwargs, response=odd_values)
def test_record_extraction_never_raises(kwargs: dict[str, Any], response: Any) -> None:
    attempt = record.new_attempt(kwargs, 1, kwargs.get("model"), 0)
    request = Request(call_id=record.call_id_of(kwargs) or "", received_ns=record.received_ns_of(kwargs) or 0,
                      requested_group=record.requested_group_of(kwargs), parent=record.parent_hint_of(kwargs))
    request.attempts.append(attempt)
    record.apply_success_event(request, attempt, kwargs, response, 1)
    a.request_attributes(request)
    a.attempt_attributes(attempt)


def test_hooks_contain_malformed_input() -> None:
    """Garbage in every hook: nothing raises into litellm, and the plugin keeps working."""
    from opentelemetry.sdk.trace import TracerProvider

    from litellm_cost_otel.logger import CostOtelLogger

    plugin = CostOtelLogger(tracer_provider=TracerProvider())

    async def feed() -> None:
        for junk in (None, 42, "x", [], {"litellm_call_id": 7}, {"metadata": "nope"}):
            await plugin.async_pre_call_deployment_hook(junk, None)  # type: ignore[arg-type]
            await plugin.async_post_call_success_deployment_hook(junk, junk, None)  # type: ignore[arg-type]
            await plugin.async_post_call_failure_deployment_hook(junk, junk, None)  # type: ignore[arg-type]
            await plugin.async_log_success_event(junk, junk, junk, junk)  # type: ignore[arg-type]
            await plugin.async_log_failure_event(junk, junk, junk, junk)  # type: ignore[arg-type]
            await plugin.async_post_call_failure_hook(junk, junk, None)  # type: ignore[arg-type]
            plugin.log_pre_api_call(None, None, junk)  # type: ignore[arg-type]
            plugin.log_success_event(junk, junk, junk, junk)  # type: ignore[arg-type]

    asyncio.run(feed())
    assert plugin.hook_errors > 0  # the non-mapping inputs were caught, not raised
    assert plugin.inflight_requests == 0


def _drive_one_request(plugin: Any, content: str) -> None:
    """The proxy's hook sequence for one successful request, with the kwargs it passes."""
    import litellm

    psr = {"body": {"model": "fast"}}
    metadata = {"model_group": "fast", "litellm_received_at": datetime.datetime.now(datetime.timezone.utc),
                "user_api_key_team_alias": "payments", "user_api_key_hash": "h" * 64, "headers": {}}
    start = {"litellm_call_id": "c1", "model": "mistral/mistral-small-latest", "metadata": metadata,
             "proxy_server_request": psr, "messages": [{"role": "user", "content": content}]}
    response = litellm.ModelResponse(choices=[{"message": {"role": "assistant", "content": "The answer."},
                                               "finish_reason": "stop"}],
                                     usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
    success = {"litellm_call_id": "c1", "response_cost": 0.5, "messages": start["messages"],
               "litellm_params": {"metadata": metadata, "proxy_server_request": psr},
               "standard_logging_object": {"model_group": "fast"}}

    async def run() -> None:
        await plugin.async_pre_call_deployment_hook(start, None)
        await plugin.async_post_call_success_deployment_hook(start, response, None)
        now = datetime.datetime.now()
        await plugin.async_log_success_event(success, response, now, now)

    asyncio.run(run())


def test_the_proxys_redaction_switches_win_over_the_opt_ins() -> None:
    import litellm
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from litellm_cost_otel.logger import CostOtelLogger
    from litellm_cost_otel.settings import ATTRIBUTION_FIELDS, Settings

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    plugin = CostOtelLogger(tracer_provider=provider, settings=Settings(
        capture_content=True, attribution=frozenset(ATTRIBUTION_FIELDS)))

    def spans_after(content: str) -> tuple[dict[str, Any], dict[str, Any]]:
        exporter.clear()
        _drive_one_request(plugin, content)
        by_kind = {span.attributes[a.OPENINFERENCE_SPAN_KIND]: dict(span.attributes)
                   for span in exporter.get_finished_spans()}
        return by_kind["CHAIN"], by_kind["LLM"]

    request, attempt = spans_after("captured prompt")
    assert request[a.TEAM_ALIAS] == "payments" and request[a.KEY_HASH] == "h" * 64
    assert "captured prompt" in attempt[a.GEN_AI_INPUT_MESSAGES]
    assert "The answer." in attempt[a.GEN_AI_OUTPUT_MESSAGES]
    try:
        litellm.turn_off_message_logging = True
        litellm.redact_user_api_key_info = True
        request, attempt = spans_after("redacted prompt")
    finally:
        litellm.turn_off_message_logging = False
        litellm.redact_user_api_key_info = False
    assert a.GEN_AI_INPUT_MESSAGES not in attempt and a.GEN_AI_OUTPUT_MESSAGES not in attempt
    assert a.TEAM_ALIAS not in request and a.KEY_HASH not in request
    assert request[a.COST_USD] == 0.5  # the rest of the span is untouched
