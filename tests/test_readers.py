"""The readers: hook arguments -> model records, with the trust boundary between the proxy's
fields and the client's."""

from __future__ import annotations

import datetime
from typing import Any

import litellm
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from litellm_cost_otel import readers
from litellm_cost_otel.devtools.hook_kwargs import TRACEPARENT, chat_response, proxy_hooks
from litellm_cost_otel.model import UNKNOWN_GROUP, Answer, Attempt, Attribution, Message, RequestKey, Success, Usage

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


class Extras(BaseModel):
    model_config = ConfigDict(extra="allow")
    field: int | None = None

    @property
    def shown(self) -> str:
        return "the property"


class OwnGetattr(BaseModel):
    field: int = 1

    def __getattr__(self, name: str) -> Any:
        return f"computed {name}"


def test_pydantic_answers_are_read_as_getattr_reads_them() -> None:
    """Fields, extras, properties, absent names, deleted fields, an own __getattr__: the fast
    path for pydantic models (no exception per absent field) reads what getattr reads."""
    response = litellm.ModelResponse(choices=[{"message": {"role": "assistant", "content": "Hi."},
                                               "finish_reason": "stop"}],
                                     usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
    extras = Extras(field=2, extra_field=3)
    deleted = Extras(field=4)
    del deleted.field  # litellm removes unset optional fields from its responses this way
    objects = [response, response.usage, response.choices[0], response.choices[0].message, extras, deleted,
               OwnGetattr(), litellm.EmbeddingResponse(model="m", data=[])]
    names = ["usage", "id", "model", "object", "choices", "finish_reason", "message", "content", "role",
             "prompt_tokens", "total_tokens", "cache_creation_input_tokens", "prompt_tokens_details", "field",
             "extra_field", "shown", "absent", "status", "data"]
    for obj in objects:
        for name in names:
            assert readers._get(obj, name) == getattr(obj, name, None), (type(obj).__name__, name)
    assert readers._get(OwnGetattr(), "absent") == "computed absent"  # its own rule, not pydantic's
    assert readers.usage_of(response) == Usage(3, 2, 5)


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
    response = chat_response()
    success = readers.success_of(readers.hook_args(hooks.success), response, started, started, LIMIT)
    assert success.cost_usd == 0.5 and success.stream
    assert success.first_chunk_ns == int((started.timestamp() + 0.3) * 1e9)
    assert success.logged_usage == Usage(3, 4, None)
    assert success.model_group == "fast" and success.api_base == "https://x.ai/v1"
    assert success.response is response  # read by the lifecycle, once (tests/test_lifecycle.py)
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


# --- exact records: every field each hook shape fills, from where ------------------------------

def test_the_deployment_hook_fills_every_attempt_field() -> None:
    hooks = proxy_hooks(attempted_fallbacks=1)
    hooks.start.update(custom_llm_provider="mistral", api_base="https://api.mistral.ai/v1", stream=True)
    attempt = readers.new_attempt(readers.hook_args(hooks.start), "acompletion", 7, LIMIT)
    assert attempt == Attempt(number=0, start_ns=7, model_group="fast", deployment_model="mistral/mistral-small-latest",
                              deployment_id="dep-1", provider="mistral", api_base="https://api.mistral.ai/v1",
                              fallback_depth=1, operation="chat", call_type="acompletion", stream=True)


def test_a_log_event_fills_an_attempt_from_litellm_params_and_the_routers_metadata() -> None:
    """An answer no attempt hook announced (a cache hit) is read from the success event."""
    hooks = proxy_hooks(model_info={"id": "dep-7"})
    event = {**hooks.success, "model": "openai/local-model", "call_type": "atext_completion",
             "litellm_params": {**hooks.success["litellm_params"], "custom_llm_provider": "openai",
                                "api_base": "http://127.0.0.1:8000/v1"}}
    attempt = readers.new_attempt(readers.hook_args(event), None, 3, LIMIT)
    assert (attempt.deployment_id, attempt.provider, attempt.api_base) == ("dep-7", "openai", "http://127.0.0.1:8000/v1")
    assert (attempt.operation, attempt.call_type, attempt.stream) == ("text_completion", "atext_completion", False)
    # With no provider named anywhere, the model's prefix is the provider.
    event["litellm_params"].pop("custom_llm_provider")
    assert readers.new_attempt(readers.hook_args(event), None, 3, LIMIT).provider == "openai"
    assert readers.new_attempt(readers.hook_args({"model": "no-prefix"}), None, 3, LIMIT).provider is None


def test_attribution_reads_every_field_and_bounds_the_tags() -> None:
    hooks = proxy_hooks(user_api_key_end_user_id="customer-1", tags=["a", 5, "", "b" * 300] + ["t"] * 40)
    who = readers.attribution_of(readers.hook_args(hooks.start), 256)
    assert who == Attribution(team_id="payments-id", team_alias="payments", org_id="acme",
                              key_alias="payments-service-key", key_hash="h" * 64, user_id="payments-owner",
                              end_user_id="customer-1", tags=("a", "b" * 256, *["t"] * 28))
    assert len(who.tags) == 32 - 2  # the first 32 tags, less the two that are no text
    hooks = proxy_hooks(tags="not-a-list")
    hooks.start["user"] = "from-the-body"
    who = readers.attribution_of(readers.hook_args(hooks.start), LIMIT)
    assert who.tags == () and who.end_user_id == "from-the-body"  # the end user the client named


def test_a_new_proxy_request() -> None:
    hooks = proxy_hooks(call_id="c" * 300)
    request = readers.new_request(readers.hook_args(hooks.start), 99, LIMIT)
    assert request.call_id == "c" * 256
    assert request.received_ns == readers.received_ns_of(readers.hook_args(hooks.start))
    assert request.parent is hooks.start["proxy_server_request"]["headers"]
    assert request.attribution.team_alias == "payments" and request.requested_model == "fast"
    assert request.model_group == UNKNOWN_GROUP  # no running proxy's router here: the lifecycle decides
    empty = readers.new_request(readers.hook_args({"proxy_server_request": {}}), 99, LIMIT)
    assert (empty.call_id, empty.received_ns, empty.requested_model, empty.parent) == ("", 99, None, None)


def test_configured_groups_come_from_the_running_proxys_router(monkeypatch: Any) -> None:
    import sys
    import types

    assert readers.configured_groups() is None or "litellm.proxy.proxy_server" in sys.modules
    proxy_server = types.ModuleType("litellm.proxy.proxy_server")
    monkeypatch.setitem(sys.modules, "litellm.proxy.proxy_server", proxy_server)
    assert readers.configured_groups() is None  # no router yet
    for names in (["fast", "local"], ("fast", "local"), {"fast", "local"}):
        proxy_server.llm_router = types.SimpleNamespace(model_names=names)  # type: ignore[attr-defined]
        assert readers.configured_groups() == {"fast", "local"}


def test_an_in_process_request_names_its_group_itself() -> None:
    for metadata, expected in (({"original_model_group": "fast-outage", "model_group": "capable"}, "fast-outage"),
                               ({"model_group": "capable"}, "capable"), ({}, "mistral/x")):
        request = readers.new_request(readers.hook_args({"metadata": metadata, "model": "mistral/x"}), 5, LIMIT)
        assert (request.model_group, request.requested_model, request.parent) == (expected, expected, None)


def test_the_success_event_fills_every_field() -> None:
    hooks = proxy_hooks(cost=0.75)
    hooks.success.update(stream=True, completion_start_time=3.5, api_call_start_time=2.5)
    hooks.success["standard_logging_object"].update(prompt_tokens=3, completion_tokens=4, total_tokens=7,
                                                    custom_llm_provider="mistral", api_base="",
                                                    hidden_params={"api_base": "https://api.mistral.ai/v1"})
    response = chat_response()
    success = readers.success_of(readers.hook_args(hooks.success), response, 1.5, 4.5, LIMIT)
    assert readers.answer_of(response, LIMIT) == Answer(Usage(3, 2, 5), ("stop",), "chatcmpl-1", "mistral-small-latest")
    assert success == Success(
        cost_usd=0.75, response=response,
        start_ns=1_500_000_000, end_ns=4_500_000_000, stream=True, first_chunk_ns=3_500_000_000,
        api_call_start_ns=2_500_000_000, logged_usage=Usage(3, 4, 7), model_group="fast", deployment_id="dep-1",
        provider="mistral", api_base="https://api.mistral.ai/v1")
    # Not a stream: no first chunk. No usage logged, no cost: nothing made up.
    plain = readers.success_of(readers.hook_args({"standard_logging_object": {"stream": True}}), None, None, None,
                               LIMIT)
    assert plain.stream and plain.cost_usd == 0.0 and plain.logged_usage is None
    hooks.success["stream"] = False
    assert readers.success_of(readers.hook_args(hooks.success), None, 1, 2, LIMIT).first_chunk_ns is None
    logged_only = {"standard_logging_object": {"completion_tokens": 4}}
    assert readers.success_of(readers.hook_args(logged_only), None, None, None, LIMIT).logged_usage == Usage(None, 4)


def test_why_an_answer_cost_zero() -> None:
    used = Usage(10, 5)
    assert readers.zero_cost_reason_of({"response_cost": 0.1}, used) is None
    assert readers.zero_cost_reason_of({}, used) == "litellm gave no cost"
    diagnosed = {"response_cost": 0.0, "zero_cost_diagnostic": {"reason": "missing_pricing_key"}}
    assert readers.zero_cost_reason_of(diagnosed, used) == "missing_pricing_key"
    logged = {"response_cost": 0.0, "standard_logging_object": {"zero_cost_diagnostic": {"reason": "r" * 300}}}
    assert readers.zero_cost_reason_of(logged, used) == "r" * 200
    assert readers.zero_cost_reason_of({"response_cost": 0.0}, used) == "no price known for this model"
    assert readers.zero_cost_reason_of({"response_cost": 0.0}, Usage(0, 0)) is None  # nothing used
    assert readers.zero_cost_reason_of({"response_cost": 0.0}, None) is None
    for priced in ({"litellm_params": {"input_cost_per_token": 0}},
                   {"litellm_params": {"model_info": {"output_cost_per_second": 0.0}}}):
        assert readers.zero_cost_reason_of({"response_cost": 0.0, **priced}, used) is None  # free on purpose


def test_captured_content_is_truncated_in_total() -> None:
    kwargs = {"messages": [{"role": "system", "content": "abcdef"},
                           {"role": "user", "content": [{"type": "text", "text": "gh"}, {"type": "image_url"},
                                                        {"type": "input_text", "text": "ij"}]},
                           {"content": "never reached"}]}
    assert readers.input_messages_of(kwargs, 8) == (Message("system", "abcdef"), Message("user", "gh…"))
    assert readers.input_messages_of(kwargs, 100)[2] == Message("user", "never reached")
    assert readers.input_messages_of({"messages": "no list"}, 8) == ()
    response = {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "The answer."}},
                            {"delta": {"content": [{"type": "output_text", "text": "Streamed."}]}}]}
    assert readers.output_messages_of(response, 100) == (Message("assistant", "The answer.", "stop"),
                                                         Message("assistant", "Streamed."))
    assert readers.output_messages_of(response, 4) == (Message("assistant", "The …", "stop"),)
    assert readers.output_messages_of({"data": []}, 4) == ()
    # Empty messages still use the budget: their number is bounded too.
    assert len(readers.input_messages_of({"messages": [{"role": "user", "content": ""}] * 50}, 8)) == 8


def test_keys_of_each_scope() -> None:
    proxy_request: dict[str, Any] = {}
    key = readers.request_key(readers.hook_args({"litellm_call_id": "c", "proxy_server_request": proxy_request,
                                                 "litellm_trace_id": "t"}))
    assert key == RequestKey("proxy", "c", id(proxy_request))
    assert readers.request_key(readers.hook_args({"litellm_params": {"litellm_trace_id": "t"}})) == \
        RequestKey("router", "t")
    assert readers.request_key(readers.hook_args({"litellm_call_id": "c"})) == RequestKey("call", "c")
    assert readers.request_key(readers.hook_args({"proxy_server_request": proxy_request})) is None


def test_plain_values() -> None:
    assert readers.operation_of(types_like("aembedding")) == "embeddings"  # an Enum's value
    assert readers.operation_of("aimage_generation") == "image_generation"
    assert readers.operation_of("atranscription") == "audio_transcription"
    assert readers.operation_of("something_new") == "chat" and readers.operation_of(None) == "chat"
    assert readers.call_type_name(types_like("aresponses")) == "aresponses"
    assert readers.call_type_name("") is None and readers.call_type_name(3) is None
    assert readers.error_type_of(TimeoutError()) == "TimeoutError" and readers.error_type_of("boom") == "_OTHER"
    assert readers.time_ns_of(datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)) == 1767225600 * 10**9
    assert readers.time_ns_of(True) is None and readers.time_ns_of("1.0") is None and readers.time_ns_of(0) is None
    assert readers.time_ns_of(9.2e9) == int(9.2e18) and readers.time_ns_of(9.3e9) is None
    assert readers.cost_of({"response_cost": 5}) == 5.0 and readers.cost_of({"response_cost": True}) is None
    assert readers.cost_of({"response_cost": -0.1}) is None and readers.cost_of({"response_cost": 1e9}) is None
    assert readers.cost_of({"response_cost": 999999999.0}) == 999999999.0
    assert readers.text_of("abc", 2) == "ab" and readers.text_of("é", 5) == "é"
    assert readers.usage_of({"usage": {"prompt_tokens": 3.0, "completion_tokens": True}}) == Usage(3, None, None)
    assert readers.usage_of({"usage": {"prompt_tokens": 2**63 - 1, "completion_tokens": 0}}) == \
        Usage(2**63 - 1, 0, 2**63 - 1)
    assert readers.usage_of({"usage": {"prompt_tokens": 2**63}}) is None
    assert readers.usage_of({"usage": {"prompt_tokens": 1.5}}) is None


def types_like(value: str) -> Any:
    """An object with a `value`, as litellm's CallTypes members are."""
    import types

    return types.SimpleNamespace(value=value)


# --- edges that pin each reader down ----------------------------------------------------------

def test_receipt_time_is_the_metadatas_stamp_before_the_arrival_time() -> None:
    hooks = proxy_hooks(litellm_received_at=datetime.datetime.fromtimestamp(1000.0, datetime.timezone.utc))
    assert readers.received_ns_of(readers.hook_args(hooks.start)) == 1000 * 10**9  # not arrival_time's


def test_a_parent_is_only_a_mapping_of_headers() -> None:
    hooks = proxy_hooks()
    hooks.start["proxy_server_request"]["headers"] = "traceparent: 00-..."
    assert readers.parent_hint_of(readers.hook_args(hooks.start)) is None


def test_a_call_id_is_a_string() -> None:
    assert readers.call_id_of(readers.hook_args({"litellm_call_id": 7})) is None
    assert readers.request_key(readers.hook_args({"litellm_call_id": 7, "proxy_server_request": {}})) is None
    assert readers.request_key(readers.hook_args({"litellm_call_id": ""})) is None


def test_the_provider_the_deployment_names_wins_over_the_models_prefix() -> None:
    hooks = proxy_hooks(model="openai/local-model")
    hooks.start["custom_llm_provider"] = "hosted_vllm"
    assert readers.new_attempt(readers.hook_args(hooks.start), None, 0, LIMIT).provider == "hosted_vllm"
    event = {"model": "openai/local-model", "litellm_params": {"custom_llm_provider": "hosted_vllm"}}
    assert readers.new_attempt(readers.hook_args(event), None, 0, LIMIT).provider == "hosted_vllm"
    nested = {"model": "bedrock/us.anthropic/claude"}  # only the first segment is the provider
    assert readers.new_attempt(readers.hook_args(nested), None, 0, LIMIT).provider == "bedrock"


def test_an_attempt_without_router_facts() -> None:
    attempt = readers.new_attempt(readers.hook_args({"api_base": "x" * 3000}), None, 0, LIMIT)
    assert attempt.fallback_depth == 0 and attempt.model_group is None and attempt.api_base == "x" * 2048


def test_usage_edges() -> None:
    # Anthropic: a cache write alone, or a read alone, is added to the input.
    assert readers.usage_of({"usage": {"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": 3}}) == \
        Usage(8, 1, 9, None, 3, None)
    assert readers.usage_of({"usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 2}}) == \
        Usage(7, 1, 8, 2, None, None)
    assert readers.usage_of({"usage": {"input_tokens": 5, "cache_read_input_tokens": 0}}) == Usage(5, None, None, 0)
    assert readers.usage_of({"usage": {"output_tokens": 4, "cache_read_input_tokens": 2}}) == Usage(None, 4, None, 2)
    assert readers.usage_of({"usage": {"prompt_tokens": 0.0, "completion_tokens": 2}}) == Usage(0, 2, 2)
    assert readers.usage_of({"usage": {"prompt_tokens": float("inf"), "completion_tokens": float("nan")}}) is None
    assert readers.usage_of(types_like_usage(prompt_tokens=4, completion_tokens=1)) == Usage(4, 1, 5)  # objects too


def types_like_usage(**usage: int) -> Any:
    import types

    return types.SimpleNamespace(usage=types.SimpleNamespace(**usage))


def test_finish_reasons_edges() -> None:
    assert readers.finish_reasons_of({"stop_reason": "something_new"}, LIMIT) == ("something_new",)
    assert readers.finish_reasons_of({"object": "response", "status": "failed", "stop_reason": "end_turn"},
                                     LIMIT) == ("error",)
    assert readers.finish_reasons_of({"object": "response", "status": "in_progress"}, LIMIT) == ("in_progress",)


def test_zero_cost_counts_all_tokens_used() -> None:
    assert readers.zero_cost_reason_of({"response_cost": 0.0}, Usage(5, 5)) == "no price known for this model"
    assert readers.zero_cost_reason_of({"response_cost": 0.0}, Usage(0, 5)) == "no price known for this model"


def test_a_cache_hits_group_from_litellms_log_when_the_router_wrote_none() -> None:
    event = {"standard_logging_object": {"model_group": "fast", "api_base": "https://a/v1"}}
    success = readers.success_of(readers.hook_args(event), None, None, None, LIMIT)
    assert (success.model_group, success.api_base) == ("fast", "https://a/v1")
    hooks = proxy_hooks()
    hooks.success["standard_logging_object"]["model_group"] = "the-group-asked-for"
    assert readers.success_of(readers.hook_args(hooks.success), None, None, None, LIMIT).model_group == "fast"
    long_base = {"standard_logging_object": {"hidden_params": {"api_base": "y" * 3000}}}
    assert readers.success_of(readers.hook_args(long_base), None, None, None, LIMIT).api_base == "y" * 2048


def test_captured_content_edges() -> None:
    parts = [{"type": "text", "text": "gh"}, {"type": "text"}, {"type": "input_text", "text": "ij"}]
    kwargs = {"messages": [{"role": "r" * 70, "content": parts}, {"role": "user", "content": None},
                           {"role": "user", "content": ""}]}
    assert readers.input_messages_of(kwargs, 100) == (Message("r" * 64, "ghij"), Message("user", ""),
                                                      Message("user", ""))
    response = {"choices": [{"finish_reason": "f" * 70, "message": {"role": "tool", "content": "x"}}]}
    assert readers.output_messages_of(response, 100) == (Message("tool", "x", "f" * 64),)


def test_time_edges() -> None:
    assert readers.time_ns_of(0.5) == 500_000_000
    assert readers.time_ns_of(2**63 / 1e9) is None  # its nanoseconds are no int64
    assert readers.time_ns_of(9.2233720366e9) == int(9.2233720366e9 * 1e9)
    assert readers.time_ns_of(10**400) is None  # an integer beyond any float


def test_usage_keeps_what_the_provider_counted() -> None:
    """The provider's own total and cache writes, never recomputed."""
    chat = {
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 15, "cache_creation_input_tokens": 6}
    }
    assert readers.usage_of(chat) == Usage(10, 2, 15, None, 6, None)
    responses = {"object": "response", "usage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 13}}
    assert readers.usage_of(responses) == Usage(10, 2, 13)


def test_read_only_mappings_are_read_too() -> None:
    """On /v1/messages litellm passes the failure deployment hook a mappingproxy."""
    import types

    hooks = proxy_hooks(metadata_key="litellm_metadata")
    args = readers.hook_args(types.MappingProxyType(hooks.start))
    assert readers.request_key(args) == readers.request_key(readers.hook_args(hooks.start))
    assert args.metadata["user_api_key_team_alias"] == "payments"


def test_zero_cost_counts_input_tokens_alone() -> None:
    assert readers.zero_cost_reason_of({"response_cost": 0.0}, Usage(5, 0)) == "no price known for this model"
