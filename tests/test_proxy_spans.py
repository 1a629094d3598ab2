"""The plugin on the real proxy: spans, attempts, cost and parents, read back over OTLP/gRPC."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import litellm
import pytest

from litellm_cost_otel import attributes as a
from litellm_cost_otel.devtools.gateway import LOCAL_INPUT_PRICE, LOCAL_OUTPUT_PRICE, wait_for_request
from litellm_cost_otel.devtools.otlp_receiver import ReceivedSpan
from litellm_cost_otel.devtools.traces import RequestTrace


def unique(text: str = "") -> str:
    return f"{text} req-{uuid.uuid4().hex[:12]}".strip()


def litellm_price(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    prompt_cost, completion_cost = litellm.cost_per_token(
        model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    return prompt_cost + completion_cost


def assert_well_placed(trace: RequestTrace) -> None:
    """Attempts are CLIENT children of the request span, inside its time range, in order."""
    request = trace.request
    previous_end = request.start_ns
    for number, attempt in enumerate(trace.attempts, start=1):
        assert attempt.kind == "CLIENT"
        assert attempt.trace_id == request.trace_id
        assert attempt.parent_span_id == request.span_id
        assert attempt.attributes[a.ATTEMPT] == number
        assert request.start_ns <= attempt.start_ns <= attempt.end_ns <= request.end_ns
        assert attempt.start_ns >= previous_end
        previous_end = attempt.end_ns
        assert attempt.name == f"chat {attempt.attributes[a.GEN_AI_REQUEST_MODEL]}"
    assert request.attributes[a.ATTEMPTS] == len(trace.attempts)


def one_request(receiver: Any, response: Any, attempts: int) -> RequestTrace:
    call_id = response.headers["x-litellm-call-id"]
    traces = wait_for_request(receiver, call_id, attempts)
    assert len(traces) == 1, f"expected exactly one request span for {call_id}, got {len(traces)}"
    trace = traces[0]
    assert len(trace.attempts) == attempts
    assert_well_placed(trace)
    return trace


def test_success_carries_cost_tokens_and_identity(proxy: Any, receiver: Any) -> None:
    response = proxy.chat("fast", unique("What is 2+2?"))
    assert response.status_code == 200
    body = response.json()
    trace = one_request(receiver, response, attempts=1)
    request, attempt = trace.request, trace.attempts[0]

    header_cost = float(response.headers["x-litellm-response-cost"])
    expected = litellm_price("mistral/mistral-small-latest", 10, 20)
    assert header_cost == pytest.approx(expected, rel=1e-9)
    assert request.attributes[a.COST_USD] == pytest.approx(header_cost, rel=1e-9)
    assert request.attributes[a.COST_MICRO_USD] == round(header_cost * 1e6)
    assert attempt.attributes[a.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(header_cost, rel=1e-9)
    assert attempt.attributes[a.LLM_COST_TOTAL] == attempt.attributes[a.GEN_AI_USAGE_COST_AMOUNT]
    assert attempt.attributes[a.GEN_AI_USAGE_COST_CURRENCY] == "USD"

    assert request.name == "litellm.request fast"
    assert request.kind == "SERVER" and request.parent_span_id == ""
    assert request.attributes[a.CALL_ID] == response.headers["x-litellm-call-id"]
    assert request.attributes[a.MODEL_GROUP] == "fast"
    assert request.attributes[a.SERVED_MODEL_GROUP] == "fast"
    assert request.attributes[a.FALLBACKS] == 0
    assert request.attributes[a.LATENCY_MS] == pytest.approx((request.end_ns - request.start_ns) / 1e6)
    assert request.status == "UNSET" and a.ERROR_TYPE not in request.attributes

    assert attempt.name == "chat mistral-small-latest"
    assert attempt.attributes[a.GEN_AI_USAGE_INPUT_TOKENS] == body["usage"]["prompt_tokens"] == 10
    assert attempt.attributes[a.GEN_AI_USAGE_OUTPUT_TOKENS] == body["usage"]["completion_tokens"] == 20
    assert attempt.attributes[a.LLM_TOKEN_COUNT_PROMPT] == 10
    assert attempt.attributes[a.LLM_TOKEN_COUNT_COMPLETION] == 20
    assert attempt.attributes[a.LLM_TOKEN_COUNT_TOTAL] == 30
    assert attempt.attributes[a.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    assert attempt.attributes[a.LLM_FINISH_REASON] == "stop"
    assert attempt.attributes[a.GEN_AI_RESPONSE_ID] == body["id"]
    assert attempt.attributes[a.GEN_AI_RESPONSE_MODEL] == "mistral-small-latest"
    assert attempt.attributes[a.GEN_AI_PROVIDER_NAME] == "mistral_ai"
    assert attempt.attributes[a.LLM_PROVIDER] == "mistralai"
    assert attempt.attributes[a.GEN_AI_OPERATION_NAME] == "chat"
    assert attempt.attributes[a.GEN_AI_REQUEST_MODEL] == "mistral-small-latest"
    assert attempt.attributes[a.LLM_MODEL_NAME] == "mistral-small-latest"
    assert attempt.attributes[a.SERVER_ADDRESS] == "api.mistral.ai"
    assert attempt.attributes[a.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert attempt.attributes[a.MODEL_GROUP] == "fast"
    assert attempt.attributes[a.DEPLOYMENT_ID] == response.headers["x-litellm-model-id"]
    assert attempt.attributes[a.FALLBACK_DEPTH] == 0
    assert a.GEN_AI_REQUEST_STREAM not in attempt.attributes

    assert request.resource["service.name"] == "test-gateway"
    assert request.resource["deployment.environment"] == "ci"


def test_stream_records_time_to_first_chunk_and_custom_price(proxy: Any, receiver: Any) -> None:
    content = unique("first_chunk_delay=0.4 prompt_tokens=7 completion_tokens=5 Tell a story.")
    response = proxy.chat("local", content, stream=True)
    assert response.status_code == 200 and "[DONE]" in response.text
    trace = one_request(receiver, response, attempts=1)
    request, attempt = trace.request, trace.attempts[0]

    assert attempt.attributes[a.GEN_AI_REQUEST_STREAM] is True
    ttft = attempt.attributes[a.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert 0.4 <= ttft < (attempt.end_ns - attempt.start_ns) / 1e9
    assert 0.4 <= request.attributes[a.REQUEST_TIME_TO_FIRST_CHUNK] < request.attributes[a.LATENCY_MS] / 1e3
    # The request span ends with the last chunk, after the first one.
    assert request.end_ns - request.start_ns > 0.4e9
    assert attempt.attributes[a.GEN_AI_USAGE_INPUT_TOKENS] == 7
    assert attempt.attributes[a.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    expected = 7 * LOCAL_INPUT_PRICE + 5 * LOCAL_OUTPUT_PRICE
    assert request.attributes[a.COST_USD] == pytest.approx(expected, rel=1e-9)
    assert attempt.attributes[a.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(expected, rel=1e-9)
    assert attempt.attributes[a.GEN_AI_PROVIDER_NAME] == "openai"
    assert attempt.attributes[a.SERVER_ADDRESS] == "127.0.0.1"
    assert attempt.attributes[a.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]


def test_custom_priced_local_model_non_streaming(proxy: Any, receiver: Any) -> None:
    response = proxy.chat("local", unique("prompt_tokens=40 completion_tokens=9 Summarise."))
    trace = one_request(receiver, response, attempts=1)
    expected = 40 * LOCAL_INPUT_PRICE + 9 * LOCAL_OUTPUT_PRICE
    assert float(response.headers["x-litellm-response-cost"]) == pytest.approx(expected, rel=1e-9)
    assert trace.request.attributes[a.COST_USD] == pytest.approx(expected, rel=1e-9)
    assert litellm.completion_cost(
        completion_response=litellm.ModelResponse(**response.json()), model="openai/local-model",
        custom_cost_per_token={"input_cost_per_token": LOCAL_INPUT_PRICE,
                               "output_cost_per_token": LOCAL_OUTPUT_PRICE},
    ) == pytest.approx(expected, rel=1e-9)


def test_retry_then_success(proxy: Any, receiver: Any) -> None:
    response = proxy.chat("local", unique("fail=1 Retry me."))
    assert response.status_code == 200
    assert response.headers["x-litellm-attempted-retries"] == "1"
    trace = one_request(receiver, response, attempts=2)
    failed, answered = trace.attempts
    assert failed.status == "ERROR"
    assert failed.attributes[a.ERROR_TYPE] == "ServiceUnavailableError"
    assert failed.attributes[a.GEN_AI_USAGE_COST_AMOUNT] == 0.0
    assert a.GEN_AI_USAGE_INPUT_TOKENS not in failed.attributes
    assert answered.status == "UNSET"
    assert answered.attributes[a.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(
        float(response.headers["x-litellm-response-cost"]), rel=1e-9)
    assert trace.request.attributes[a.FALLBACKS] == 0
    assert trace.request.attributes[a.SERVED_MODEL_GROUP] == "local"


def test_fallback_fast_to_capable(proxy: Any, receiver: Any) -> None:
    response = proxy.chat("fast-outage", unique("Fall back please."))
    assert response.status_code == 200
    assert response.headers["x-litellm-model-group"] == "capable"
    trace = one_request(receiver, response, attempts=3)
    request = trace.request
    assert request.attributes[a.MODEL_GROUP] == "fast-outage"
    assert request.attributes[a.SERVED_MODEL_GROUP] == "capable"
    assert request.attributes[a.FALLBACKS] == int(response.headers["x-litellm-attempted-fallbacks"]) == 1
    groups = [span.attributes[a.MODEL_GROUP] for span in trace.attempts]
    depths = [span.attributes[a.FALLBACK_DEPTH] for span in trace.attempts]
    errors = [span.attributes.get(a.ERROR_TYPE) for span in trace.attempts]
    assert groups == ["fast-outage", "fast-outage", "capable"]
    assert depths == [0, 0, 1]
    assert errors == ["RateLimitError", "RateLimitError", None]
    header_cost = float(response.headers["x-litellm-response-cost"])
    assert header_cost == pytest.approx(litellm_price("mistral/mistral-large-latest", 10, 20), rel=1e-9)
    assert request.attributes[a.COST_USD] == pytest.approx(header_cost, rel=1e-9)
    assert sum(s.attributes[a.GEN_AI_USAGE_COST_AMOUNT] for s in trace.attempts) == pytest.approx(header_cost)
    assert trace.attempts[2].attributes[a.GEN_AI_REQUEST_MODEL] == "mistral-large-latest"
    assert all(s.attributes[a.SERVER_ADDRESS] == "api.mistral.ai" for s in trace.attempts)


def test_fallback_chain_ending_in_failure(proxy: Any, receiver: Any) -> None:
    response = proxy.chat("doomed", unique("Nothing will answer."))
    assert response.status_code >= 400
    trace = one_request(receiver, response, attempts=4)
    request = trace.request
    assert request.status == "ERROR"
    assert request.attributes[a.ERROR_TYPE]
    assert a.SERVED_MODEL_GROUP not in request.attributes
    assert request.attributes[a.COST_USD] == 0.0
    assert request.attributes[a.FALLBACKS] == 1
    assert [s.attributes[a.MODEL_GROUP] for s in trace.attempts] == ["doomed", "doomed", "doomed-backup",
                                                                     "doomed-backup"]
    assert [s.attributes[a.ERROR_TYPE] for s in trace.attempts] == ["InternalServerError"] * 2 + [
        "RateLimitError"] * 2
    assert all(s.status == "ERROR" and s.attributes[a.GEN_AI_USAGE_COST_AMOUNT] == 0.0 for s in trace.attempts)


def test_final_failure_of_the_local_group(proxy: Any, receiver: Any) -> None:
    response = proxy.chat("local", unique("status=503 Always down."))
    assert response.status_code == 503
    trace = one_request(receiver, response, attempts=2)
    assert trace.request.status == "ERROR"
    assert trace.request.attributes[a.ERROR_TYPE] == "ServiceUnavailableError"
    assert trace.request.attributes[a.CALL_ID] == response.headers["x-litellm-call-id"]
    assert a.SERVED_MODEL_GROUP not in trace.request.attributes
    assert all(s.attributes[a.ERROR_TYPE] == "ServiceUnavailableError" for s in trace.attempts)


def test_stream_failing_midway(proxy: Any, receiver: Any) -> None:
    response = proxy.chat("local", unique("stream_error_after=3 Start then break."), stream=True)
    assert response.status_code == 200  # the client had chunks before the error
    assert '"error"' in response.text
    trace = one_request(receiver, response, attempts=1)
    assert trace.request.status == "ERROR"
    assert trace.attempts[0].status == "ERROR"
    assert trace.attempts[0].attributes[a.GEN_AI_REQUEST_STREAM] is True
    assert trace.request.attributes[a.COST_USD] == 0.0


def test_stream_failing_before_the_first_chunk(proxy: Any, receiver: Any, fake_llm: Any) -> None:
    content = unique("stream_error_after=0 Fail at once.")
    response = proxy.chat("local", content, stream=True)
    # The local server counts the calls it got: the attempts litellm made (1.108 retries this
    # failure, 1.106 does not).
    attempts = fake_llm.seen[content]
    assert attempts >= 1
    assert response.status_code >= 400 or '"error"' in response.text
    trace = one_request(receiver, response, attempts=attempts)
    assert trace.request.status == "ERROR"
    assert [s.status for s in trace.attempts] == ["ERROR"] * attempts


def test_unknown_model_gets_an_error_span(proxy: Any, receiver: Any) -> None:
    response = proxy.chat("no-such-group", unique())
    assert response.status_code == 400
    trace = one_request(receiver, response, attempts=0)
    assert trace.request.status == "ERROR"
    # A name no configured group has: a fixed group and span name, the raw name only as a label.
    assert trace.request.name == "litellm.request"
    assert trace.request.attributes[a.MODEL_GROUP] == "_unknown"
    assert trace.request.attributes[a.REQUESTED_MODEL] == "no-such-group"
    assert trace.request.attributes[a.ATTEMPTS] == 0


def test_client_traceparent_is_continued(proxy: Any, receiver: Any) -> None:
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    response = proxy.chat("fast", unique(), headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    trace = one_request(receiver, response, attempts=1)
    assert trace.request.trace_id == trace_id
    assert trace.request.parent_span_id == parent_id
    assert trace.request.kind == "SERVER"


def test_two_concurrent_requests_with_the_same_call_id_stay_apart(proxy: Any, receiver: Any) -> None:
    call_id = f"shared-{uuid.uuid4().hex[:8]}"
    headers = {"x-litellm-call-id": call_id}
    with ThreadPoolExecutor(2) as pool:
        slow_local = pool.submit(proxy.chat, "local", unique("delay=1.0 prompt_tokens=3 completion_tokens=4"),
                                 headers=headers)
        fallback = pool.submit(proxy.chat, "fast-outage", unique(), headers=headers)
        local_response, fallback_response = slow_local.result(), fallback.result()
    assert local_response.headers["x-litellm-call-id"] == fallback_response.headers["x-litellm-call-id"] == call_id
    traces = wait_for_request(receiver, call_id, attempts=1, count=2)
    assert len(traces) == 2
    by_group = {t.request.attributes[a.MODEL_GROUP]: t for t in traces}
    local, fell_back = by_group["local"], by_group["fast-outage"]
    assert local.request.trace_id != fell_back.request.trace_id
    assert len(local.attempts) == 1 and len(fell_back.attempts) == 3
    assert local.request.attributes[a.COST_USD] == pytest.approx(
        float(local_response.headers["x-litellm-response-cost"]), rel=1e-9)
    assert fell_back.request.attributes[a.COST_USD] == pytest.approx(
        float(fallback_response.headers["x-litellm-response-cost"]), rel=1e-9)
    for trace in traces:
        assert_well_placed(trace)


KINDS: dict[str, tuple[str, str, bool, int]] = {
    # kind: (group, content directive, stream, expected attempts)
    "success": ("fast", "", False, 1),
    "local": ("local", "prompt_tokens=21 completion_tokens=13", False, 1),
    "stream": ("local", "first_chunk_delay=0.05 prompt_tokens=5 completion_tokens=6", True, 1),
    "retry": ("local", "fail=1", False, 2),
    "fallback": ("fast-outage", "", False, 3),
    "failure": ("local", "status=503", False, 2),
}


def test_fifty_concurrent_mixed_requests_without_cross_talk(proxy: Any, receiver: Any) -> None:
    plan = [list(KINDS)[i % len(KINDS)] for i in range(50)]

    def send(kind: str) -> tuple[str, Any]:
        group, directive, stream, _ = KINDS[kind]
        extra = {"stream_options": {"include_usage": True}} if stream else {}
        return kind, proxy.chat(group, unique(directive), stream=stream, **extra)

    with ThreadPoolExecutor(25) as pool:
        results = list(pool.map(send, plan))

    for kind, response in results:
        group, _, stream, attempts = KINDS[kind]
        trace = one_request(receiver, response, attempts=attempts)
        request = trace.request
        assert request.attributes[a.MODEL_GROUP] == group
        if kind == "failure":
            assert response.status_code == 503 and request.status == "ERROR"
            continue
        assert response.status_code == 200, (kind, response.text[:200])
        answered = trace.attempts[-1]
        if stream:
            chunks = [json.loads(line[6:]) for line in response.text.splitlines()
                      if line.startswith("data: {")]
            usage = next(chunk["usage"] for chunk in chunks if chunk.get("usage"))
            assert answered.attributes[a.GEN_AI_USAGE_INPUT_TOKENS] == usage["prompt_tokens"] == 5
            assert answered.attributes[a.GEN_AI_USAGE_OUTPUT_TOKENS] == usage["completion_tokens"] == 6
            assert request.attributes[a.COST_USD] == pytest.approx(5 * LOCAL_INPUT_PRICE + 6 * LOCAL_OUTPUT_PRICE)
        else:
            usage = response.json()["usage"]
            assert answered.attributes[a.GEN_AI_USAGE_INPUT_TOKENS] == usage["prompt_tokens"]
            assert answered.attributes[a.GEN_AI_USAGE_OUTPUT_TOKENS] == usage["completion_tokens"]
            assert request.attributes[a.COST_USD] == pytest.approx(
                float(response.headers["x-litellm-response-cost"]), rel=1e-9)
        assert answered.attributes[a.GEN_AI_RESPONSE_ID] in response.text


def test_only_the_plugins_spans_leave_the_proxy(proxy: Any, receiver: Any) -> None:
    """A private tracer provider: FastAPI's own tracing inside the proxy stays off."""
    response = proxy.chat("fast", unique())
    one_request(receiver, response, attempts=1)
    ours = [s for s in receiver.snapshot() if s.resource.get("service.name") == "test-gateway"]
    assert ours and {s.scope for s in ours} == {"litellm_cost_otel"}


def all_values(span: ReceivedSpan) -> list[str]:
    return [json.dumps(value) for value in span.attributes.values()] + [span.name, span.status_message]


def test_no_key_prompt_or_completion_text_is_exported(proxy: Any, receiver: Any) -> None:
    from litellm_cost_otel.devtools.gateway import LOCAL_KEY, PROVIDER_KEY

    secret = f"my-secret-prompt-{uuid.uuid4().hex}"
    sent = [proxy.chat("fast", secret), proxy.chat("local", f"{secret} stream", stream=True),
            proxy.chat("local", f"status=503 {secret}"), proxy.chat("fast-outage", secret)]
    for response, attempts in zip(sent, (1, 1, 2, 3), strict=True):
        one_request(receiver, response, attempts)
    forbidden = [PROVIDER_KEY, LOCAL_KEY, proxy.master_key, "my-secret-prompt", "Hello from the",
                 "Local reply", "fake model", "mock rate limit error", "local model unavailable"]
    spans = [s for s in receiver.snapshot() if s.resource.get("service.name") == "test-gateway"]
    assert len(spans) >= 11
    for span in spans:
        text = " ".join(all_values(span))
        for needle in forbidden:
            assert needle not in text, (needle, span.name)


def test_every_emitted_attribute_is_documented(proxy: Any, receiver: Any) -> None:
    from pathlib import Path

    reference = (Path(__file__).parent.parent / "docs" / "attributes.md").read_text()
    documented = {name for name in a.all_names() if f"`{name}`" in reference}
    assert documented == a.all_names(), sorted(a.all_names() - documented)
    # Its own traffic: a plain answer, a stream, and a fallback after failed attempts.
    sent = [(proxy.chat("fast", unique("Hello.")), 1),
            (proxy.chat("local", unique("first_chunk_delay=0.05 prompt_tokens=5 completion_tokens=6"), stream=True), 1),
            (proxy.chat("fast-outage", unique("Fall back please.")), 3)]
    traces = [one_request(receiver, response, attempts) for response, attempts in sent]
    emitted = {key for trace in traces for span in (trace.request, *trace.attempts) for key in span.attributes}
    assert len(emitted) > 30
    assert {name for name in emitted if f"`{name}`" not in reference} == set()
    from litellm_cost_otel import metrics

    assert {name for name in metrics.METRIC_NAMES if f"`{name}`" not in reference} == set()
    receiver.wait_for(lambda _: bool(receiver.metric_points(metrics.REQUESTS, "test-gateway")))
    points = [p for p in receiver.metrics.copy().values() if p.service == "test-gateway"]
    dimensions = {key for point in points for key in point.attributes}
    assert {metrics.REQUESTS, metrics.COST, metrics.TOKEN_USAGE} <= {point.name for point in points}
    assert {name for name in dimensions if f"`{name}`" not in reference} == set()
