"""Every route that spends money, on the real proxy, with team keys and a client traceparent,
streaming and not: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
`/v1/responses`, `/v1/messages`, image generation and audio transcription, all answered by a
real OpenAI/Anthropic-compatible server on 127.0.0.1 (litellm's mocks do not price
`/v1/messages` nor stream `/v1/responses`)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from litellm_cost_otel import attributes as a
from litellm_cost_otel.devtools.gateway import AUTH_DELAY_S, EMBED_PRICE, TEAM_KEYS, wait_for_request
from litellm_cost_otel.devtools.proxy import LiteLLMProxy
from litellm_cost_otel.devtools.traces import RequestTrace

TEAM_KEY = TEAM_KEYS["payments"]
USAGE = "prompt_tokens=20 completion_tokens=10 cached_tokens=4 reasoning_tokens=3 cache_write_tokens=2"


def body_for(route: str, group: str, text: str, stream: bool) -> dict[str, Any]:
    if route == "/v1/completions":
        body: dict[str, Any] = {"model": group, "prompt": text}
    elif route == "/v1/embeddings":
        return {"model": group, "input": [text]}
    elif route == "/v1/responses":
        body = {"model": group, "input": text}
    elif route == "/v1/images/generations":
        return {"model": group, "prompt": text}
    else:
        body = {"model": group, "messages": [{"role": "user", "content": text}]}
        if route == "/v1/messages":
            body["max_tokens"] = 64
    if stream:
        body["stream"] = True
        if route in ("/v1/chat/completions", "/v1/completions"):
            body["stream_options"] = {"include_usage": True}
    return body


@dataclass
class Sent:
    route: str
    group: str
    text: str
    stream: bool
    response: httpx.Response
    sent_ns: int
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parent_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])


def send(proxy: LiteLLMProxy, route: str, group: str, directives: str, stream: bool = False) -> Sent:
    text = f"{directives} {uuid.uuid4().hex}"
    sent = Sent(route, group, text, stream, httpx.Response(0), 0)
    headers = {"Authorization": f"Bearer {TEAM_KEY}", "x-test-auth-delay": str(AUTH_DELAY_S),
               "traceparent": f"00-{sent.trace_id}-{sent.parent_id}-01"}
    sent.sent_ns = time.time_ns()
    if route == "/v1/audio/transcriptions":
        sent.response = proxy.client.post(route, headers=headers, data={"model": group, "prompt": text},
                                          files={"file": ("hello.wav", b"RIFF0000WAVEfmt ", "audio/wav")})
    else:
        sent.response = proxy.client.post(route, json=body_for(route, group, text, stream), headers=headers)
    return sent


def checked_trace(sent: Sent, receiver: Any, attempts: int) -> RequestTrace:
    """The request span: the proxy's SERVER span under the client's trace, from the proxy's
    receipt (before its auth), attributed to the key's team; attempts in order under it."""
    assert sent.response.status_code == 200, (sent.route, sent.group, sent.response.text[:300])
    (trace,) = wait_for_request(receiver, sent.response.headers["x-litellm-call-id"], attempts)
    request = trace.request
    assert len(trace.attempts) == attempts
    assert request.kind == "SERVER"
    assert (request.trace_id, request.parent_span_id) == (sent.trace_id, sent.parent_id)
    assert sent.sent_ns - 5_000_000 <= request.start_ns <= trace.attempts[0].start_ns - AUTH_DELAY_S * 1e9
    assert request.attributes[a.TEAM_ALIAS] == "payments" and request.attributes[a.TEAM_ID] == "payments-id"
    assert request.attributes[a.ORG_ID] == "acme" and request.attributes[a.KEY_ALIAS] == "payments-service-key"
    assert request.attributes[a.MODEL_GROUP] == sent.group and request.name == f"litellm.request {sent.group}"
    assert a.CLOCK_ADJUSTED not in request.attributes
    for number, attempt in enumerate(trace.attempts, start=1):
        assert attempt.kind == "CLIENT" and attempt.parent_span_id == request.span_id
        assert attempt.attributes[a.ATTEMPT] == number
        assert request.start_ns <= attempt.start_ns <= attempt.end_ns <= request.end_ns
    return trace


def header_cost(sent: Sent) -> float:
    return float(sent.response.headers["x-litellm-response-cost"])


# (route, group, operation, input, output, cache read, cache write, reasoning) for the USAGE directives
TOKENS = [
    ("/v1/chat/completions", "local", "chat", 20, 10, 4, None, 3),
    ("/v1/completions", "local-text", "text_completion", 20, 10, 4, None, 3),
    ("/v1/responses", "local", "chat", 20, 10, 4, None, 3),
    # Anthropic's input_tokens leave out the cache reads and writes; the GenAI count includes them.
    # No reasoning tokens in Anthropic's usage: litellm's normalised usage says 0.
    ("/v1/messages", "claude-local", "chat", 26, 10, 4, 2, 0),
]


@pytest.mark.parametrize(("route", "group", "operation", "input_tokens", "output_tokens", "cache_read",
                          "cache_write", "reasoning"), TOKENS, ids=[row[0] for row in TOKENS])
def test_route_streamed_and_not(routes_proxy: LiteLLMProxy, receiver: Any, route: str, group: str, operation: str,
                                input_tokens: int, output_tokens: int, cache_read: int | None,
                                cache_write: int | None, reasoning: int | None) -> None:
    with ThreadPoolExecutor(2) as pool:
        plain, streamed = pool.map(lambda stream: send(routes_proxy, route, group, USAGE, stream), (False, True))
    cost = header_cost(plain)  # streams get no cost header: the same usage answered unstreamed is the oracle
    assert cost > 0
    for sent in (plain, streamed):
        trace = checked_trace(sent, receiver, attempts=1)
        attempt = trace.attempts[0].attributes
        assert trace.request.attributes[a.COST_USD] == pytest.approx(cost, rel=1e-9)
        assert attempt[a.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(cost, rel=1e-9)
        assert attempt[a.GEN_AI_OPERATION_NAME] == operation
        assert attempt[a.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
        assert attempt[a.GEN_AI_USAGE_OUTPUT_TOKENS] == output_tokens
        assert attempt.get(a.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) == cache_read
        assert attempt.get(a.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS) == cache_write
        assert attempt.get(a.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) == reasoning
        assert attempt[a.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
        assert attempt.get(a.GEN_AI_REQUEST_STREAM, False) is sent.stream
        if sent.stream:
            assert 0 <= attempt[a.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] <= (trace.attempts[0].end_ns
                                                                           - trace.attempts[0].start_ns) / 1e9


def test_embeddings(routes_proxy: LiteLLMProxy, receiver: Any) -> None:
    sent = send(routes_proxy, "/v1/embeddings", "local-embed", "prompt_tokens=9")
    attempt = checked_trace(sent, receiver, attempts=1).attempts[0].attributes
    assert header_cost(sent) == pytest.approx(9 * EMBED_PRICE, rel=1e-9)
    assert attempt[a.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(header_cost(sent), rel=1e-9)
    assert attempt[a.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attempt[a.GEN_AI_USAGE_INPUT_TOKENS] == 9 and a.GEN_AI_USAGE_OUTPUT_TOKENS not in attempt


@pytest.mark.parametrize(("route", "directives", "reason"), [
    ("/v1/chat/completions", "finish_reason=length", "length"),
    ("/v1/completions", "finish_reason=length", "length"),
    ("/v1/responses", "max_output=1", "length"),  # status incomplete, reason max_output_tokens
    ("/v1/messages", "finish_reason=length", "length"),  # stop_reason max_tokens
])
def test_cut_short_answers_say_so(routes_proxy: LiteLLMProxy, receiver: Any, route: str, directives: str,
                                  reason: str) -> None:
    group = {"/v1/completions": "local-text", "/v1/messages": "claude-local"}.get(route, "local")
    trace = checked_trace(send(routes_proxy, route, group, directives), receiver, attempts=1)
    assert trace.attempts[0].attributes[a.GEN_AI_RESPONSE_FINISH_REASONS] == [reason]


@pytest.mark.parametrize(("route", "group"), [("/v1/chat/completions", "local"), ("/v1/completions", "local-text"),
                                              ("/v1/responses", "local"), ("/v1/messages", "claude-local")])
def test_retry_is_an_attempt_on_every_route(routes_proxy: LiteLLMProxy, receiver: Any, route: str,
                                            group: str) -> None:
    with ThreadPoolExecutor(2) as pool:
        retried, plain = pool.map(lambda d: send(routes_proxy, route, group, d), (f"fail=1 {USAGE}", USAGE))
    trace = checked_trace(retried, receiver, attempts=2)
    failed, answered = trace.attempts
    assert failed.status == "ERROR" and failed.attributes[a.ERROR_TYPE]
    assert failed.attributes[a.GEN_AI_USAGE_COST_AMOUNT] == 0.0 and answered.status == "UNSET"
    # litellm drops the cost header after a retry on /v1/messages: the plain twin is the oracle.
    assert trace.request.attributes[a.COST_USD] == pytest.approx(header_cost(plain), rel=1e-9)
    assert trace.request.attributes[a.FALLBACKS] == 0


@pytest.mark.parametrize(("route", "group", "served"), [("/v1/chat/completions", "broken", "local"),
                                                        ("/v1/responses", "broken", "local"),
                                                        ("/v1/messages", "broken-claude", "claude-local")])
def test_fallback_hops_are_attempts_on_every_route(routes_proxy: LiteLLMProxy, receiver: Any, route: str, group: str,
                                                   served: str) -> None:
    sent = send(routes_proxy, route, group, USAGE)
    assert sent.response.headers["x-litellm-attempted-fallbacks"] == "1"
    trace = checked_trace(sent, receiver, attempts=3)
    assert [s.attributes[a.MODEL_GROUP] for s in trace.attempts] == [group, group, served]
    assert [s.status for s in trace.attempts] == ["ERROR", "ERROR", "UNSET"]
    assert [s.attributes[a.FALLBACK_DEPTH] for s in trace.attempts] == [0, 0, 1]
    assert trace.request.attributes[a.SERVED_MODEL_GROUP] == served and trace.request.attributes[a.FALLBACKS] == 1
    assert trace.request.attributes[a.COST_USD] > 0
    if "x-litellm-response-cost" in sent.response.headers:
        assert trace.request.attributes[a.COST_USD] == pytest.approx(header_cost(sent), rel=1e-9)


def test_messages_on_an_openai_style_deployment_is_one_attempt(routes_proxy: LiteLLMProxy, receiver: Any) -> None:
    """litellm answers /v1/messages on an `openai/` deployment through its Responses API: the
    deployment hook fires twice (anthropic_messages, then aresponses) for one attempt."""
    sent = send(routes_proxy, "/v1/messages", "local", USAGE)
    trace = checked_trace(sent, receiver, attempts=1)
    assert trace.request.attributes[a.COST_USD] == pytest.approx(header_cost(sent), rel=1e-9)
    assert trace.attempts[0].attributes[a.GEN_AI_USAGE_OUTPUT_TOKENS] == 10


def test_image_generation_and_audio_transcription(routes_proxy: LiteLLMProxy, receiver: Any) -> None:
    image = send(routes_proxy, "/v1/images/generations", "local-image", "A lighthouse.")
    transcription = send(routes_proxy, "/v1/audio/transcriptions", "local-whisper", "duration=2.5")
    for sent, operation, cost in ((image, "image_generation", 0.01), (transcription, "audio_transcription", 2.5e-4)):
        trace = checked_trace(sent, receiver, attempts=1)
        assert header_cost(sent) == pytest.approx(cost, rel=1e-9)
        assert trace.request.attributes[a.COST_USD] == pytest.approx(cost, rel=1e-9)
        assert trace.attempts[0].attributes[a.GEN_AI_OPERATION_NAME] == operation


def test_the_span_carries_litellms_final_cost_after_discount_and_margin(routes_proxy: LiteLLMProxy,
                                                                        receiver: Any) -> None:
    """The routes proxy prices Anthropic with a 25% discount and a $0.001 margin per request:
    the span's cost is the final one the client is told, not the list price."""
    sent = send(routes_proxy, "/v1/messages", "claude-local", USAGE)
    trace = checked_trace(sent, receiver, attempts=1)
    headers = sent.response.headers
    final, listed = header_cost(sent), float(headers["x-litellm-response-cost-original"])
    assert float(headers["x-litellm-response-cost-discount-amount"]) == pytest.approx(0.25 * listed, rel=1e-6)
    assert float(headers["x-litellm-response-cost-margin-amount"]) == pytest.approx(0.001, rel=1e-6)
    assert final == pytest.approx(0.75 * listed + 0.001, rel=1e-6)
    assert trace.request.attributes[a.COST_USD] == pytest.approx(final, rel=1e-9)
    assert trace.attempts[0].attributes[a.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(final, rel=1e-9)
