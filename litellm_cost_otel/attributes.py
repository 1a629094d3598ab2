"""Every attribute name the plugin emits, and one mapper per vocabulary from records to attributes.

Names come from the conventions' own packages where they exist: the GenAI and general names
from opentelemetry-semantic-conventions, OpenInference's from openinference-semantic-conventions.
The names those packages lack (this plugin's own `litellm.*`, the seed tutorial's `llm.*`, the
proposed GenAI cost names) are defined here, marked as such. docs/attributes.md documents each
one; a test fails when they drift apart.

Summing rule: each summable quantity appears under a given name on exactly one span per unit,
so summing one attribute over all spans never double counts:
- request cost: `llm.usage.cost_usd` (request spans only);
- attempt cost: `gen_ai.usage.cost.amount` and `llm.cost.total` (attempt spans only; failed
  attempts carry 0, so their sum equals the sum of `llm.usage.cost_usd`);
- tokens: `gen_ai.usage.*` and `llm.token_count.*` (the answering attempt span only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from openinference.semconv.trace import OpenInferenceLLMProviderValues as OpenInferenceProviders
from openinference.semconv.trace import OpenInferenceSpanKindValues, SpanAttributes
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiProviderNameValues as GenAiProviders
from opentelemetry.semconv.attributes import error_attributes, server_attributes

from .model import UNKNOWN_GROUP, Attempt, Attribution, Message, Request
from .readers import server_address_of

# --- OpenTelemetry GenAI and general conventions (from opentelemetry-semantic-conventions) ----
ERROR_TYPE = error_attributes.ERROR_TYPE
SERVER_ADDRESS = server_attributes.SERVER_ADDRESS
SERVER_PORT = server_attributes.SERVER_PORT
GEN_AI_OPERATION_NAME = gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_PROVIDER_NAME = gen_ai.GEN_AI_PROVIDER_NAME
GEN_AI_REQUEST_MODEL = gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_REQUEST_STREAM = gen_ai.GEN_AI_REQUEST_STREAM
GEN_AI_RESPONSE_MODEL = gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_RESPONSE_ID = gen_ai.GEN_AI_RESPONSE_ID
GEN_AI_RESPONSE_FINISH_REASONS = gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
GEN_AI_USAGE_INPUT_TOKENS = gen_ai.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS = gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
GEN_AI_INPUT_MESSAGES = gen_ai.GEN_AI_INPUT_MESSAGES  # opt-in content capture only
GEN_AI_OUTPUT_MESSAGES = gen_ai.GEN_AI_OUTPUT_MESSAGES
GEN_AI_TOKEN_TYPE = gen_ai.GEN_AI_TOKEN_TYPE  # metrics only
GEN_AI_CONVERSATION_ID = gen_ai.GEN_AI_CONVERSATION_ID  # client-chosen session id: spans only

# --- OpenInference (from openinference-semantic-conventions; Arize Phoenix and others) --------
OPENINFERENCE_SPAN_KIND = SpanAttributes.OPENINFERENCE_SPAN_KIND
SESSION_ID = SpanAttributes.SESSION_ID  # Phoenix's Sessions view groups by it
LLM_MODEL_NAME = SpanAttributes.LLM_MODEL_NAME
LLM_PROVIDER = SpanAttributes.LLM_PROVIDER
LLM_FINISH_REASON = SpanAttributes.LLM_FINISH_REASON
LLM_COST_TOTAL = SpanAttributes.LLM_COST_TOTAL
LLM_TOKEN_COUNT_PROMPT = SpanAttributes.LLM_TOKEN_COUNT_PROMPT
LLM_TOKEN_COUNT_COMPLETION = SpanAttributes.LLM_TOKEN_COUNT_COMPLETION
LLM_TOKEN_COUNT_TOTAL = SpanAttributes.LLM_TOKEN_COUNT_TOTAL
LLM_TOKEN_COUNT_CACHE_READ = SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ
LLM_TOKEN_COUNT_CACHE_WRITE = SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE
LLM_TOKEN_COUNT_REASONING = SpanAttributes.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING

# --- names no package has ----------------------------------------------------------------------
# The proposed GenAI cost names (an open proposal, not in the conventions yet).
GEN_AI_USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE = "gen_ai.usage.cost.source"
# The seed tutorial's names, which its users query.
COST_USD = "llm.usage.cost_usd"
COST_MICRO_USD = "llm.usage.cost_micro_usd"
LATENCY_MS = "llm.latency_ms"
# This plugin's own.
CALL_ID = "litellm.call_id"
MODEL_GROUP = "litellm.model_group"
REQUESTED_MODEL = "litellm.requested_model"
SERVED_MODEL_GROUP = "litellm.served_model_group"
ATTEMPTS = "litellm.attempts"
FALLBACKS = "litellm.fallbacks"
ATTEMPT = "litellm.attempt"
DEPLOYMENT_ID = "litellm.deployment_id"
FALLBACK_DEPTH = "litellm.fallback_depth"
REQUEST_TIME_TO_FIRST_CHUNK = "litellm.time_to_first_chunk"
TEAM_ID = "litellm.team.id"
TEAM_ALIAS = "litellm.team.alias"
ORG_ID = "litellm.org.id"
KEY_ALIAS = "litellm.key.alias"
KEY_HASH = "litellm.key.hash"
USER_ID = "litellm.user.id"
END_USER_ID = "litellm.end_user.id"
REQUEST_TAGS = "litellm.request.tags"
CLOCK_ADJUSTED = "litellm_cost_otel.clock_adjusted"
BUDGET_CHECKED = "litellm_cost_otel.budget.checked"  # the budgets that applied, by name
BUDGET_REMAINING_USD = "litellm_cost_otel.budget.remaining_usd"  # the least left among them
BUDGET_REFUSED = "litellm_cost_otel.budget.refused"  # the budget that refused the request
BUDGET_NAME = "litellm_cost_otel.budget.name"  # metrics only
BUDGET_STORE_STEP = "litellm_cost_otel.budget.store_step"  # metrics only: reserve | settle
OUTCOME = "litellm.outcome"  # metrics only: success | failure
DROP_REASON = "litellm_cost_otel.drop_reason"  # metrics only: queue_full | export_failed
HOOK = "litellm_cost_otel.hook"  # metrics only: which hook raised

# litellm's custom_llm_provider -> gen_ai.provider.name (the conventions' values; others pass through)
_GEN_AI_PROVIDERS = {
    "mistral": GenAiProviders.MISTRAL_AI, "openai": GenAiProviders.OPENAI,
    "text-completion-openai": GenAiProviders.OPENAI, "anthropic": GenAiProviders.ANTHROPIC,
    "azure": GenAiProviders.AZURE_AI_OPENAI, "azure_ai": GenAiProviders.AZURE_AI_INFERENCE,
    "bedrock": GenAiProviders.AWS_BEDROCK, "vertex_ai": GenAiProviders.GCP_VERTEX_AI,
    "vertex_ai_beta": GenAiProviders.GCP_VERTEX_AI, "gemini": GenAiProviders.GCP_GEMINI,
    "groq": GenAiProviders.GROQ, "deepseek": GenAiProviders.DEEPSEEK, "xai": GenAiProviders.X_AI,
    "cohere": GenAiProviders.COHERE, "cohere_chat": GenAiProviders.COHERE,
    "perplexity": GenAiProviders.PERPLEXITY, "watsonx": GenAiProviders.IBM_WATSONX_AI,
}
_GEN_AI_PROVIDER_VALUES = {
    **{litellm: provider.value for litellm, provider in _GEN_AI_PROVIDERS.items()},
    # Not in the conventions' list, which allows custom values.
    "hosted_vllm": "vllm", "vllm": "vllm", "ollama": "ollama", "ollama_chat": "ollama",
}
# litellm's custom_llm_provider -> OpenInference llm.provider
_OPENINFERENCE_PROVIDERS = {litellm: provider.value for litellm, provider in {
    "mistral": OpenInferenceProviders.MISTRALAI, "openai": OpenInferenceProviders.OPENAI,
    "text-completion-openai": OpenInferenceProviders.OPENAI, "anthropic": OpenInferenceProviders.ANTHROPIC,
    "azure": OpenInferenceProviders.AZURE, "azure_ai": OpenInferenceProviders.AZURE,
    "bedrock": OpenInferenceProviders.AWS, "vertex_ai": OpenInferenceProviders.GOOGLE,
    "vertex_ai_beta": OpenInferenceProviders.GOOGLE, "gemini": OpenInferenceProviders.GOOGLE,
    "groq": OpenInferenceProviders.GROQ, "deepseek": OpenInferenceProviders.DEEPSEEK,
    "xai": OpenInferenceProviders.XAI, "cohere": OpenInferenceProviders.COHERE,
    "cohere_chat": OpenInferenceProviders.COHERE, "perplexity": OpenInferenceProviders.PERPLEXITY,
    "ollama": OpenInferenceProviders.OLLAMA, "ollama_chat": OpenInferenceProviders.OLLAMA,
    "together_ai": OpenInferenceProviders.TOGETHER, "fireworks_ai": OpenInferenceProviders.FIREWORKS,
    "cerebras": OpenInferenceProviders.CEREBRAS,
}.items()}
_CHAIN, _LLM = OpenInferenceSpanKindValues.CHAIN.value, OpenInferenceSpanKindValues.LLM.value

# Attribution setting name -> (attribute, how to read it off the record)
ATTRIBUTION: dict[str, tuple[str, Callable[[Attribution], Any]]] = {
    "team_id": (TEAM_ID, lambda who: who.team_id),
    "team_alias": (TEAM_ALIAS, lambda who: who.team_alias),
    "org_id": (ORG_ID, lambda who: who.org_id),
    "key_alias": (KEY_ALIAS, lambda who: who.key_alias),
    "key_hash": (KEY_HASH, lambda who: who.key_hash),
    "user_id": (USER_ID, lambda who: who.user_id),
    "end_user_id": (END_USER_ID, lambda who: who.end_user_id),
    "tags": (REQUEST_TAGS, lambda who: list(who.tags) or None),
}

REQUEST_SPAN_PREFIX = "litellm.request"


def request_span_name(request: Request) -> str:
    """`litellm.request {group}` for a configured group; just `litellm.request` otherwise, so
    that no client-chosen model name makes a span name."""
    group = request.model_group
    return REQUEST_SPAN_PREFIX if group == UNKNOWN_GROUP else f"{REQUEST_SPAN_PREFIX} {group}"


def attempt_span_name(attempt: Attempt) -> str:
    """GenAI convention: `{gen_ai.operation.name} {gen_ai.request.model}`, with the model only
    where the configuration bounds it (not on a wildcard route)."""
    model = attempt.bounded_request_model
    return f"{attempt.operation} {model}" if model else attempt.operation


def _put(attributes: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        attributes[name] = value


def gen_ai_provider(litellm_provider: str | None) -> str:
    provider = litellm_provider or ""
    return _GEN_AI_PROVIDER_VALUES.get(provider, provider or "_OTHER")


def attribution_attributes(who: Attribution, enabled: Collection[str]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for field in enabled:
        name, read = ATTRIBUTION[field]
        _put(attributes, name, read(who))
    return attributes


def messages_json(messages: tuple[Message, ...]) -> str:
    """The GenAI conventions' shape: [{"role", "parts": [{"type": "text", "content"}], ...}]."""
    shaped = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "parts": [{"type": "text", "content": message.text}]}
        if message.finish_reason:
            item["finish_reason"] = message.finish_reason
        shaped.append(item)
    return json.dumps(shaped, ensure_ascii=False)


# --- one mapper per vocabulary: each adds its names to the span's attributes ------------------

def _litellm_request(request: Request, into: dict[str, Any]) -> None:
    """This plugin's and the seed tutorial's names."""
    cost = request.cost_usd
    into[CALL_ID] = request.call_id
    into[ATTEMPTS] = len(request.attempts)
    into[FALLBACKS] = request.fallbacks
    into[COST_USD] = cost
    into[COST_MICRO_USD] = round(cost * 1_000_000)
    into[MODEL_GROUP] = request.model_group
    if request.requested_model != request.model_group:
        _put(into, REQUESTED_MODEL, request.requested_model)
    _put(into, SERVED_MODEL_GROUP, request.served_group)
    if request.end_ns is not None:
        into[LATENCY_MS] = (request.end_ns - request.received_ns) / 1e6
    _put(into, REQUEST_TIME_TO_FIRST_CHUNK, request.time_to_first_chunk_s)
    _put(into, ERROR_TYPE, request.error_type)
    if request.clock_adjusted:
        into[CLOCK_ADJUSTED] = True
    budget = request.budget
    if budget is not None:
        if budget.holds:
            into[BUDGET_CHECKED] = [hold.name for hold in budget.holds]
            into[BUDGET_REMAINING_USD] = min(hold.remaining_usd for hold in budget.holds)
        _put(into, BUDGET_REFUSED, budget.refused_by)


def _litellm_attempt(attempt: Attempt, into: dict[str, Any]) -> None:
    into[ATTEMPT] = attempt.number
    into[FALLBACK_DEPTH] = attempt.fallback_depth
    _put(into, MODEL_GROUP, attempt.model_group)
    _put(into, DEPLOYMENT_ID, attempt.deployment_id)


def _gen_ai_attempt(attempt: Attempt, into: dict[str, Any]) -> None:
    """The GenAI conventions' inference span, with the proposed cost names."""
    into[GEN_AI_OPERATION_NAME] = attempt.operation
    into[GEN_AI_PROVIDER_NAME] = gen_ai_provider(attempt.provider)
    into[GEN_AI_USAGE_COST_AMOUNT] = attempt.cost_usd
    into[GEN_AI_USAGE_COST_CURRENCY] = "USD"
    into[GEN_AI_USAGE_COST_SOURCE] = "local"  # litellm prices every call itself (price map or deployment)
    _put(into, GEN_AI_REQUEST_MODEL, attempt.request_model)
    if attempt.stream:
        into[GEN_AI_REQUEST_STREAM] = True
    host, port = server_address_of(attempt.api_base)
    if host:
        into[SERVER_ADDRESS] = host
        into[SERVER_PORT] = port
    if attempt.error_type is not None:
        into[ERROR_TYPE] = attempt.error_type
        return
    _put(into, GEN_AI_RESPONSE_MODEL, attempt.response_model)
    _put(into, GEN_AI_RESPONSE_ID, attempt.response_id)
    _put(into, GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, attempt.time_to_first_chunk_s)
    if attempt.input_messages:
        into[GEN_AI_INPUT_MESSAGES] = messages_json(attempt.input_messages)
    if attempt.output_messages:
        into[GEN_AI_OUTPUT_MESSAGES] = messages_json(attempt.output_messages)
    if attempt.finish_reasons:
        into[GEN_AI_RESPONSE_FINISH_REASONS] = list(attempt.finish_reasons)
    usage = attempt.usage
    if usage is not None:
        _put(into, GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
        _put(into, GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
        _put(into, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_input_tokens)
        _put(into, GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_creation_input_tokens)
        _put(into, GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning_output_tokens)


def _openinference_attempt(attempt: Attempt, into: dict[str, Any]) -> None:
    """OpenInference's LLM span: the twins of the GenAI names, for Phoenix and its kin."""
    provider = attempt.provider or ""
    into[OPENINFERENCE_SPAN_KIND] = _LLM
    into[LLM_COST_TOTAL] = attempt.cost_usd
    _put(into, LLM_MODEL_NAME, attempt.request_model)
    _put(into, LLM_PROVIDER, _OPENINFERENCE_PROVIDERS.get(provider, provider or None))
    if attempt.error_type is not None:
        return
    if attempt.finish_reasons:
        into[LLM_FINISH_REASON] = attempt.finish_reasons[0]
    usage = attempt.usage
    if usage is not None:
        _put(into, LLM_TOKEN_COUNT_PROMPT, usage.input_tokens)
        _put(into, LLM_TOKEN_COUNT_COMPLETION, usage.output_tokens)
        _put(into, LLM_TOKEN_COUNT_TOTAL, usage.total_tokens)
        _put(into, LLM_TOKEN_COUNT_CACHE_READ, usage.cache_read_input_tokens)
        _put(into, LLM_TOKEN_COUNT_CACHE_WRITE, usage.cache_creation_input_tokens)
        _put(into, LLM_TOKEN_COUNT_REASONING, usage.reasoning_output_tokens)


def request_attributes(request: Request, attribution: Collection[str] = (),
                       openinference: bool = True) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    _litellm_request(request, attributes)
    if attribution:
        attributes.update(attribution_attributes(request.attribution, attribution))
    if request.session_id is not None:
        attributes[GEN_AI_CONVERSATION_ID] = request.session_id
    if openinference:
        attributes[OPENINFERENCE_SPAN_KIND] = _CHAIN  # all OpenInference has of a request span
        _put(attributes, SESSION_ID, request.session_id)
    return attributes


def attempt_attributes(attempt: Attempt, openinference: bool = True) -> dict[str, Any]:
    """GenAI and this plugin's names; with `openinference`, the OpenInference twins too."""
    attributes: dict[str, Any] = {}
    _litellm_attempt(attempt, attributes)
    _gen_ai_attempt(attempt, attributes)
    if openinference:
        _openinference_attempt(attempt, attributes)
    return attributes


def all_names() -> set[str]:
    """Every attribute name defined above (for the documentation test)."""
    return {value for key, value in globals().items()
            if key.isupper() and isinstance(value, str) and "." in value and not key.endswith("_PREFIX")}
