"""The readers: hook arguments -> model records, with the trust boundary between the proxy's
fields and the client's."""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from litellm_cost_otel import readers
from litellm_cost_otel.devtools.hook_kwargs import TRACEPARENT, chat_response, proxy_hooks
from litellm_cost_otel.model import UNKNOWN_GROUP, Usage

LIMIT = 256


def test_proxy_metadata_is_litellm_metadata_where_the_proxy_keeps_it_there() -> None:
    """On /v1/responses and /v1/messages `metadata` is the client's body field: forged
    receipt time, headers and team there are not read."""
    forged = {"litellm_received_at": 4102444800, "user_api_key_team_alias": "someone-else",
              "headers": {"traceparent": "00-" + "c" * 32 + "-" + "d" * 16 + "-01"}}
    hooks = proxy_hooks(metadata_key="litellm_metadata", body={"metadata": forged})
    for kwargs in (hooks.start, hooks.success):
        args = readers.hook_args(kwargs)
        assert args.metadata is hooks.start["litellm_metadata"]
        assert readers.received_ns_of(args) == int(args.metadata["litellm_received_at"].timestamp() * 1e9)
        assert readers.attribution_of(args, LIMIT).team_alias == "payments"
        assert readers.parent_hint_of(args)["traceparent"] == TRACEPARENT  # the real header
    # Chat routes: the proxy wrote over `metadata` (and dropped any `litellm_metadata`).
    chat = proxy_hooks()
    assert readers.hook_args(chat.start).metadata is chat.start["metadata"]
    assert readers.hook_args(chat.success).metadata is chat.start["metadata"]


def test_the_parent_is_never_taken_from_the_body() -> None:
    hooks = proxy_hooks(headers={"traceparent": "00-" + "c" * 32 + "-" + "d" * 16 + "-01"})
    hooks.start["proxy_server_request"]["headers"] = {}
    assert readers.parent_hint_of(readers.hook_args(hooks.start)) == {}  # the HTTP headers, not metadata's
    proxy_span = object()
    hooks = proxy_hooks(litellm_parent_otel_span=proxy_span)
    assert readers.parent_hint_of(readers.hook_args(hooks.start)) is proxy_span


def test_receipt_time_falls_back_to_the_proxys_arrival_time() -> None:
    hooks = proxy_hooks(litellm_received_at=None)
    args = readers.hook_args(hooks.start)
    assert readers.received_ns_of(args) == int(hooks.start["proxy_server_request"]["arrival_time"] * 1e9)


def test_request_group_is_configured_or_unknown(monkeypatch: Any) -> None:
    import sys
    import types

    proxy_server = types.ModuleType("litellm.proxy.proxy_server")
    proxy_server.llm_router = types.SimpleNamespace(model_names={"fast", "mistral/*"})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "litellm.proxy.proxy_server", proxy_server)
    known = readers.new_request(readers.hook_args(proxy_hooks().start), 0, LIMIT)
    assert known.model_group == "fast" and known.requested_model == "fast"
    junk = readers.new_request(readers.hook_args(proxy_hooks(group="x" * 10_000).start), 0, LIMIT)
    assert junk.model_group == UNKNOWN_GROUP and junk.requested_model == "x" * LIMIT
    # Router fields a client wrote into its metadata before routing are not the group either.
    forged = proxy_hooks(group="ghost", deployment_model_name="fast", model_group="fast")
    forged.start["proxy_server_request"]["body"]["model"] = "ghost"
    assert readers.new_request(readers.hook_args(forged.start), 0, LIMIT).model_group == UNKNOWN_GROUP
    # Not on the proxy: the application itself names the group.
    in_process = {"litellm_trace_id": "t", "metadata": {"model_group": "fast"}}
    assert readers.new_request(readers.hook_args(in_process), 0, LIMIT).model_group == "fast"


def test_attempt_reads_the_deployment_the_router_picked() -> None:
    hooks = proxy_hooks(attempted_fallbacks=2, model_info={"id": "dep-9"})
    attempt = readers.new_attempt(readers.hook_args(hooks.start), "acompletion", 5, LIMIT)
    assert attempt.start_ns == 5 and attempt.model_group == "fast" and attempt.deployment_id == "dep-1"
    assert attempt.provider == "mistral" and attempt.request_model == "mistral-small-latest"
    assert attempt.fallback_depth == 2 and attempt.operation == "chat" and attempt.call_type == "acompletion"
    assert not attempt.wildcard and attempt.bounded_request_model == "mistral-small-latest"
    wildcard = proxy_hooks(group="mistral/mistral-tiny", model="mistral/mistral-tiny",
                           deployment_model_name="mistral/*")
    attempt = readers.new_attempt(readers.hook_args(wildcard.start), "acompletion", 5, LIMIT)
    assert attempt.model_group == "mistral/*" and attempt.wildcard
    assert attempt.request_model == "mistral-tiny" and attempt.bounded_request_model is None
    for call_type, operation in (("aembedding", "embeddings"), ("atext_completion", "text_completion"),
                                 ("aresponses", "chat"), ("anthropic_messages", "chat")):
        assert readers.new_attempt(readers.hook_args(hooks.start), call_type, 0, LIMIT).operation == operation


def test_usage_of_every_route() -> None:
    chat = {"usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
                      "prompt_tokens_details": {"cached_tokens": 40},
                      "completion_tokens_details": {"reasoning_tokens": 7}}}
    assert readers.usage_of(chat) == Usage(100, 50, 150, 40, None, 7)
    responses = {"object": "response", "usage": {"input_tokens": 30, "output_tokens": 9, "total_tokens": 39,
                                                  "input_tokens_details": {"cached_tokens": 10},
                                                  "output_tokens_details": {"reasoning_tokens": 4}}}
    assert readers.usage_of(responses) == Usage(30, 9, 39, 10, None, 4)
    # Anthropic's input_tokens leave out the cached ones; the GenAI count includes them.
    messages = {"usage": {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 20,
                          "cache_creation_input_tokens": 3}}
    assert readers.usage_of(messages) == Usage(28, 7, 35, 20, 3, None)
    embeddings = {"usage": {"prompt_tokens": 12, "total_tokens": 12}}
    assert readers.usage_of(embeddings) == Usage(12, None, 12)
    assert readers.usage_of({"usage": None}) is None
    assert readers.usage_of({"usage": {"prompt_tokens": "many"}}) is None
    assert readers.usage_of({"usage": {"prompt_tokens": 2**70, "completion_tokens": -3}}) is None


def test_finish_reasons_of_every_route() -> None:
    assert readers.finish_reasons_of(chat_response(), LIMIT) == ("stop",)
    two = {"choices": [{"finish_reason": "stop"}, {"finish_reason": "length"}]}
    assert readers.finish_reasons_of(two, LIMIT) == ("stop", "length")
    assert readers.finish_reasons_of({"stop_reason": "max_tokens"}, LIMIT) == ("length",)
    assert readers.finish_reasons_of({"stop_reason": "tool_use"}, LIMIT) == ("tool_calls",)
    assert readers.finish_reasons_of({"object": "response", "status": "completed"}, LIMIT) == ("stop",)
    incomplete = {"object": "response", "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert readers.finish_reasons_of(incomplete, LIMIT) == ("length",)
    assert readers.finish_reasons_of({"choices": [{"finish_reason": "x" * 1000}]}, 8) == ("x" * 8,)
    assert readers.finish_reasons_of({"data": []}, LIMIT) == ()  # embeddings have none


def test_values_are_valid_for_the_encoder() -> None:
    assert readers.text_of("a\ud800b", LIMIT) == "a?b"  # a lone surrogate is no UTF-8
    assert readers.text_of("é" * 500, 10) == "é" * 10
    assert readers.text_of("", LIMIT) is None and readers.text_of(5, LIMIT) is None
    assert readers.time_ns_of(1e300) is None and readers.time_ns_of(float("nan")) is None
    assert readers.time_ns_of(-5) is None and readers.time_ns_of(1e11) is None  # past 2262: no int64 of ns
    assert readers.time_ns_of(4102444800) == 4102444800 * 10**9  # the year 2100: implausible, the lifecycle's call
    assert readers.time_ns_of(datetime.datetime.max) == int(datetime.datetime.max.timestamp() * 1e9)
    assert readers.cost_of({"response_cost": float("nan")}) is None
    assert readers.cost_of({"response_cost": float("inf")}) is None
    assert readers.cost_of({"response_cost": 10**400}) is None
    assert readers.cost_of({"response_cost": "0.1"}) is None
    assert readers.cost_of({"response_cost": None, "standard_logging_object": {"response_cost": 0.5}}) == 0.5


def test_keys_separate_same_call_id_on_different_proxy_requests() -> None:
    first, second = proxy_hooks(call_id="same"), proxy_hooks(call_id="same")
    key = readers.request_key(readers.hook_args(first.start))
    assert key is not None and key.scope == "proxy"
    assert key != readers.request_key(readers.hook_args(second.start))
    assert key == readers.request_key(readers.hook_args(first.success))  # same request, other hook
    router = readers.request_key(readers.hook_args({"litellm_trace_id": "trace"}))
    assert router is not None and (router.scope, router.value) == ("router", "trace")
    assert readers.request_key(readers.hook_args({})) is None
    assert readers.request_key(readers.hook_args("not a mapping")) is None


def test_success_event() -> None:
    started = datetime.datetime.fromtimestamp(1.0)
    hooks = proxy_hooks()
    hooks.success.update(stream=True, api_call_start_time=started,
                         completion_start_time=started + datetime.timedelta(seconds=0.3))
    hooks.success["standard_logging_object"].update(prompt_tokens=3, completion_tokens=4, api_base="https://x.ai/v1")
    success = readers.success_of(readers.hook_args(hooks.success), chat_response(), started, started, LIMIT)
    assert success.cost_usd == 0.5 and success.stream
    assert success.first_chunk_ns == int((started.timestamp() + 0.3) * 1e9)
    assert success.logged_usage == Usage(3, 4, None)
    assert success.model_group == "fast" and success.api_base == "https://x.ai/v1"
    assert success.answer.finish_reasons == ("stop",) and success.answer.response_id == "chatcmpl-1"
    assert readers.server_address_of(success.api_base) == ("x.ai", 443)


# Odd, nested values of the kinds hooks may carry.
odd_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
hook_kwargs = st.dictionaries(
    st.sampled_from(["litellm_call_id", "litellm_trace_id", "model", "model_info", "metadata", "litellm_metadata",
                     "litellm_params", "proxy_server_request", "stream", "fallback_depth", "response_cost",
                     "standard_logging_object", "completion_start_time", "api_call_start_time",
                     "custom_llm_provider", "api_base"]),
    odd_values, max_size=10)


@settings(max_examples=300, deadline=None)
@given(kwargs=hook_kwargs, response=odd_values)
def test_readers_never_raise(kwargs: dict[str, Any], response: Any) -> None:
    args = readers.hook_args(kwargs)
    readers.request_key(args)
    readers.new_request(args, 0, LIMIT)
    readers.new_attempt(args, kwargs.get("model"), 0, LIMIT)
    readers.answer_of(response, LIMIT)
    readers.success_of(args, response, kwargs.get("model"), kwargs.get("stream"), LIMIT)
    readers.zero_cost_reason_of(args.kwargs, readers.usage_of(response))
