"""The mappers: records -> attributes and span names, with the summing rule and bounded names."""

from __future__ import annotations

from litellm_cost_otel import attributes as a
from litellm_cost_otel.model import UNKNOWN_GROUP, Attempt, Attribution, Message, Request, Usage


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


def test_span_names_take_only_bounded_values() -> None:
    configured = Request(call_id="c", received_ns=0, model_group="fast", requested_model="fast")
    assert a.request_span_name(configured) == "litellm.request fast"
    assert a.REQUESTED_MODEL not in a.request_attributes(configured)
    junk = Request(call_id="c", received_ns=0, model_group=UNKNOWN_GROUP, requested_model="ghost-model-17")
    assert a.request_span_name(junk) == "litellm.request"
    attributes = a.request_attributes(junk)
    assert attributes[a.MODEL_GROUP] == UNKNOWN_GROUP and attributes[a.REQUESTED_MODEL] == "ghost-model-17"
    plain = Attempt(number=1, start_ns=0, deployment_model="mistral/mistral-small-latest", provider="mistral")
    assert a.attempt_span_name(plain) == "chat mistral-small-latest"
    wildcard = Attempt(number=1, start_ns=0, deployment_model="mistral/anything-a-client-sends",
                       provider="mistral", model_group="mistral/*", wildcard=True)
    assert a.attempt_span_name(wildcard) == "chat"
    assert a.attempt_attributes(wildcard)[a.GEN_AI_REQUEST_MODEL] == "anything-a-client-sends"


def test_an_adjusted_clock_is_on_the_span() -> None:
    adjusted = Request(call_id="c", received_ns=0, clock_adjusted=True)
    assert a.request_attributes(adjusted)[a.CLOCK_ADJUSTED] is True
    assert a.CLOCK_ADJUSTED not in a.request_attributes(Request(call_id="c", received_ns=0))


def rich_attempt(**overrides: object) -> Attempt:
    values: dict[str, object] = dict(
        number=2, start_ns=0, end_ns=1, model_group="fast", deployment_model="mistral/mistral-small-latest",
        deployment_id="dep-1", provider="mistral", api_base="https://api.mistral.ai/v1", fallback_depth=1,
        stream=True, cost_usd=0.25, usage=Usage(10, 20, 30, 4, 2, 3), finish_reasons=("stop", "length"),
        response_model="mistral-small-2409", response_id="r-1", time_to_first_chunk_s=0.5,
        input_messages=(Message("user", "Hi"),), output_messages=(Message("assistant", "Hello", "stop"),))
    values.update(overrides)
    return Attempt(**values)  # type: ignore[arg-type]


def test_an_answered_attempt_in_every_vocabulary() -> None:
    assert a.attempt_attributes(rich_attempt()) == {
        a.ATTEMPT: 2, a.FALLBACK_DEPTH: 1, a.MODEL_GROUP: "fast", a.DEPLOYMENT_ID: "dep-1",
        a.GEN_AI_OPERATION_NAME: "chat", a.GEN_AI_PROVIDER_NAME: "mistral_ai", a.GEN_AI_USAGE_COST_AMOUNT: 0.25,
        a.GEN_AI_USAGE_COST_CURRENCY: "USD", a.GEN_AI_USAGE_COST_SOURCE: "local",
        a.GEN_AI_REQUEST_MODEL: "mistral-small-latest", a.GEN_AI_REQUEST_STREAM: True,
        a.SERVER_ADDRESS: "api.mistral.ai", a.SERVER_PORT: 443, a.GEN_AI_RESPONSE_MODEL: "mistral-small-2409",
        a.GEN_AI_RESPONSE_ID: "r-1", a.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.5,
        a.GEN_AI_INPUT_MESSAGES: '[{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]',
        a.GEN_AI_OUTPUT_MESSAGES: '[{"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], '
                                  '"finish_reason": "stop"}]',
        a.GEN_AI_RESPONSE_FINISH_REASONS: ["stop", "length"], a.GEN_AI_USAGE_INPUT_TOKENS: 10,
        a.GEN_AI_USAGE_OUTPUT_TOKENS: 20, a.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 4,
        a.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 2, a.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 3,
        a.OPENINFERENCE_SPAN_KIND: "LLM", a.LLM_COST_TOTAL: 0.25, a.LLM_MODEL_NAME: "mistral-small-latest",
        a.LLM_PROVIDER: "mistralai", a.LLM_FINISH_REASON: "stop", a.LLM_TOKEN_COUNT_PROMPT: 10,
        a.LLM_TOKEN_COUNT_COMPLETION: 20, a.LLM_TOKEN_COUNT_TOTAL: 30, a.LLM_TOKEN_COUNT_CACHE_READ: 4,
        a.LLM_TOKEN_COUNT_CACHE_WRITE: 2, a.LLM_TOKEN_COUNT_REASONING: 3,
    }


def test_a_failed_attempt_carries_its_error_and_nothing_of_an_answer() -> None:
    failed = rich_attempt(error_type="RateLimitError", cost_usd=0.0, stream=False, api_base="http://10.0.0.5:8000/v1")
    assert a.attempt_attributes(failed) == {
        a.ATTEMPT: 2, a.FALLBACK_DEPTH: 1, a.MODEL_GROUP: "fast", a.DEPLOYMENT_ID: "dep-1",
        a.GEN_AI_OPERATION_NAME: "chat", a.GEN_AI_PROVIDER_NAME: "mistral_ai", a.GEN_AI_USAGE_COST_AMOUNT: 0.0,
        a.GEN_AI_USAGE_COST_CURRENCY: "USD", a.GEN_AI_USAGE_COST_SOURCE: "local",
        a.GEN_AI_REQUEST_MODEL: "mistral-small-latest", a.SERVER_ADDRESS: "10.0.0.5", a.SERVER_PORT: 8000,
        a.ERROR_TYPE: "RateLimitError", a.OPENINFERENCE_SPAN_KIND: "LLM", a.LLM_COST_TOTAL: 0.0,
        a.LLM_MODEL_NAME: "mistral-small-latest", a.LLM_PROVIDER: "mistralai",
    }
    bare = Attempt(number=1, start_ns=0)
    assert a.attempt_attributes(bare, openinference=False) == {
        a.ATTEMPT: 1, a.FALLBACK_DEPTH: 0, a.GEN_AI_OPERATION_NAME: "chat", a.GEN_AI_PROVIDER_NAME: "_OTHER",
        a.GEN_AI_USAGE_COST_AMOUNT: 0.0, a.GEN_AI_USAGE_COST_CURRENCY: "USD", a.GEN_AI_USAGE_COST_SOURCE: "local"}
    assert a.attempt_attributes(rich_attempt(usage=None, finish_reasons=()))[a.OPENINFERENCE_SPAN_KIND] == "LLM"


def test_a_request_in_every_vocabulary_with_attribution() -> None:
    answered = rich_attempt()
    request = Request(call_id="c", received_ns=1_000_000, end_ns=3_500_000, model_group="fast",
                      requested_model="fast-alias", attempts=[rich_attempt(error_type="X", cost_usd=0.0), answered],
                      time_to_first_chunk_s=0.75, clock_adjusted=True,
                      attribution=Attribution(team_id="t-1", team_alias="payments", tags=("x", "y")))
    assert a.request_attributes(request, ("team_id", "team_alias", "org_id", "tags")) == {
        a.CALL_ID: "c", a.ATTEMPTS: 2, a.FALLBACKS: 1, a.COST_USD: 0.25, a.COST_MICRO_USD: 250_000,
        a.MODEL_GROUP: "fast", a.REQUESTED_MODEL: "fast-alias", a.SERVED_MODEL_GROUP: "fast", a.LATENCY_MS: 2.5,
        a.REQUEST_TIME_TO_FIRST_CHUNK: 0.75, a.CLOCK_ADJUSTED: True, a.TEAM_ID: "t-1", a.TEAM_ALIAS: "payments",
        a.REQUEST_TAGS: ["x", "y"], a.OPENINFERENCE_SPAN_KIND: "CHAIN",
    }
    request.finish(4_000_000, "ServiceUnavailableError")
    failed = a.request_attributes(request, (), openinference=False)
    assert failed[a.ERROR_TYPE] == "ServiceUnavailableError" and a.SERVED_MODEL_GROUP not in failed
    assert a.OPENINFERENCE_SPAN_KIND not in failed and a.TEAM_ID not in failed
    unfinished = Request(call_id="c", received_ns=0)
    assert a.LATENCY_MS not in a.request_attributes(unfinished) and a.REQUEST_TAGS not in a.attribution_attributes(
        unfinished.attribution, ("tags",))


def test_provider_names_in_each_vocabulary() -> None:
    for litellm_provider, gen_ai, openinference in (
            ("mistral", "mistral_ai", "mistralai"), ("openai", "openai", "openai"),
            ("azure", "azure.ai.openai", "azure"),
            ("bedrock", "aws.bedrock", "aws"), ("vertex_ai", "gcp.vertex_ai", "google"),
            ("hosted_vllm", "vllm", "hosted_vllm"), ("ollama_chat", "ollama", "ollama"),
            ("some_new_one", "some_new_one", "some_new_one")):
        assert a.gen_ai_provider(litellm_provider) == gen_ai
        assert a.attempt_attributes(Attempt(number=1, start_ns=0, provider=litellm_provider))[a.LLM_PROVIDER] == \
            openinference
    assert a.gen_ai_provider(None) == "_OTHER" and a.gen_ai_provider("") == "_OTHER"
    assert a.LLM_PROVIDER not in a.attempt_attributes(Attempt(number=1, start_ns=0))


def test_all_names_are_the_attribute_names() -> None:
    names = a.all_names()
    assert {a.COST_USD, a.GEN_AI_USAGE_INPUT_TOKENS, a.LLM_COST_TOTAL, a.CLOCK_ADJUSTED, a.HOOK} <= names
    assert a.REQUEST_SPAN_PREFIX not in names and "CHAIN" not in names and "_unknown" not in names
    assert all("." in name for name in names)


def test_captured_text_stays_readable_and_micro_dollars_round() -> None:
    assert a.messages_json((Message("user", "Grüße"),)) == \
        '[{"role": "user", "parts": [{"type": "text", "content": "Grüße"}]}]'
    request = Request(call_id="c", received_ns=0, attempts=[Attempt(number=1, start_ns=0, cost_usd=0.75)])
    assert a.request_attributes(request)[a.COST_MICRO_USD] == 750_000
