"""The mappers: records -> attributes and span names, with the summing rule and bounded names."""

from __future__ import annotations

from litellm_cost_otel import attributes as a
from litellm_cost_otel.model import UNKNOWN_GROUP, Attempt, Request, Usage


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
