"""Every attribute name the plugin emits, and the mappers from records to attributes.

The GenAI conventions are still at "Development" stability, so names live here and nowhere
else. docs/attributes.md documents each one; a test fails when they drift apart.

Summing rule: each summable quantity appears under a given name on exactly one span per unit,
so summing one attribute over all spans never double counts:
- request cost: `llm.usage.cost_usd` (request spans only);
- attempt cost: `gen_ai.usage.cost.amount` and `llm.cost.total` (attempt spans only; failed
  attempts carry 0, so their sum equals the sum of `llm.usage.cost_usd`);
- tokens: `gen_ai.usage.*` and `llm.token_count.*` (the answering attempt span only).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from .model import UNKNOWN_GROUP, Attempt, Attribution, Message, Request
from .readers import server_address_of

# --- this plugin's own names (litellm.*, and the seed tutorial's llm.* names) ----------------
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
COST_USD = "llm.usage.cost_usd"
COST_MICRO_USD = "llm.usage.cost_micro_usd"
LATENCY_MS = "llm.latency_ms"

# --- OpenTelemetry GenAI and general conventions ---------------------------------------------
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE = "gen_ai.usage.cost.source"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"  # opt-in content capture only
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"  # metrics only
OUTCOME = "litellm.outcome"  # metrics only: success | failure
DROP_REASON = "litellm_cost_otel.drop_reason"  # metrics only: queue_full | export_failed
HOOK = "litellm_cost_otel.hook"  # metrics only: which hook raised

# --- OpenInference (Arize Phoenix and others) ------------------------------------------------
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
LLM_MODEL_NAME = "llm.model_name"
LLM_PROVIDER = "llm.provider"
LLM_FINISH_REASON = "llm.finish_reason"
LLM_COST_TOTAL = "llm.cost.total"
LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL = "llm.token_count.total"
LLM_TOKEN_COUNT_CACHE_READ = "llm.token_count.prompt_details.cache_read"
LLM_TOKEN_COUNT_CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
LLM_TOKEN_COUNT_REASONING = "llm.token_count.completion_details.reasoning"

# litellm's custom_llm_provider -> gen_ai.provider.name (well-known values; others pass through)
_GEN_AI_PROVIDERS = {
    "mistral": "mistral_ai", "openai": "openai", "text-completion-openai": "openai",
    "anthropic": "anthropic", "azure": "azure.ai.openai", "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock", "vertex_ai": "gcp.vertex_ai", "vertex_ai_beta": "gcp.vertex_ai",
    "gemini": "gcp.gemini", "groq": "groq", "deepseek": "deepseek", "xai": "x_ai",
    "cohere": "cohere", "cohere_chat": "cohere", "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai", "hosted_vllm": "vllm", "vllm": "vllm",
    "ollama": "ollama", "ollama_chat": "ollama",
}
# litellm's custom_llm_provider -> OpenInference llm.provider
_OPENINFERENCE_PROVIDERS = {
    "mistral": "mistralai", "openai": "openai", "text-completion-openai": "openai",
    "anthropic": "anthropic", "azure": "azure", "azure_ai": "azure", "bedrock": "aws",
    "vertex_ai": "google", "vertex_ai_beta": "google", "gemini": "google", "groq": "groq",
    "deepseek": "deepseek", "xai": "xai", "cohere": "cohere", "cohere_chat": "cohere",
    "perplexity": "perplexity", "ollama": "ollama", "ollama_chat": "ollama",
    "together_ai": "together", "fireworks_ai": "fireworks", "cerebras": "cerebras",
}

# Attribution setting name -> (attribute, how to read it off the record)
ATTRIBUTION = {
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
    return _GEN_AI_PROVIDERS.get(provider, provider or "_OTHER")


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


def request_attributes(request: Request, attribution: Collection[str] = (),
                       openinference: bool = True) -> dict[str, Any]:
    cost = request.cost_usd
    attributes: dict[str, Any] = {
        CALL_ID: request.call_id,
        ATTEMPTS: len(request.attempts),
        FALLBACKS: request.fallbacks,
        COST_USD: cost,
        COST_MICRO_USD: round(cost * 1_000_000),
    }
    attributes[MODEL_GROUP] = request.model_group
    if request.requested_model != request.model_group:
        _put(attributes, REQUESTED_MODEL, request.requested_model)
    _put(attributes, SERVED_MODEL_GROUP, request.served_group)
    if request.end_ns is not None:
        attributes[LATENCY_MS] = (request.end_ns - request.received_ns) / 1e6
    _put(attributes, REQUEST_TIME_TO_FIRST_CHUNK, request.time_to_first_chunk_s)
    _put(attributes, ERROR_TYPE, request.error_type)
    if request.clock_adjusted:
        attributes[CLOCK_ADJUSTED] = True
    if attribution:
        attributes.update(attribution_attributes(request.attribution, attribution))
    if openinference:
        attributes[OPENINFERENCE_SPAN_KIND] = "CHAIN"
    return attributes


def attempt_attributes(attempt: Attempt, openinference: bool = True) -> dict[str, Any]:
    """GenAI and this plugin's names; with `openinference`, the OpenInference twins too."""
    provider = attempt.provider or ""
    attributes: dict[str, Any] = {
        ATTEMPT: attempt.number,
        FALLBACK_DEPTH: attempt.fallback_depth,
        GEN_AI_OPERATION_NAME: attempt.operation,
        GEN_AI_PROVIDER_NAME: gen_ai_provider(provider),
        GEN_AI_USAGE_COST_AMOUNT: attempt.cost_usd,
        GEN_AI_USAGE_COST_CURRENCY: "USD",
        # litellm prices every call itself, from its price map or the deployment's pricing.
        GEN_AI_USAGE_COST_SOURCE: "local",
    }
    _put(attributes, MODEL_GROUP, attempt.model_group)
    _put(attributes, DEPLOYMENT_ID, attempt.deployment_id)
    _put(attributes, GEN_AI_REQUEST_MODEL, attempt.request_model)
    if openinference:
        attributes[OPENINFERENCE_SPAN_KIND] = "LLM"
        attributes[LLM_COST_TOTAL] = attempt.cost_usd
        _put(attributes, LLM_MODEL_NAME, attempt.request_model)
        _put(attributes, LLM_PROVIDER, _OPENINFERENCE_PROVIDERS.get(provider, provider or None))
    if attempt.stream:
        attributes[GEN_AI_REQUEST_STREAM] = True
    host, port = server_address_of(attempt.api_base)
    if host:
        attributes[SERVER_ADDRESS] = host
        attributes[SERVER_PORT] = port
    if attempt.error_type is not None:
        attributes[ERROR_TYPE] = attempt.error_type
        return attributes
    _put(attributes, GEN_AI_RESPONSE_MODEL, attempt.response_model)
    _put(attributes, GEN_AI_RESPONSE_ID, attempt.response_id)
    _put(attributes, GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, attempt.time_to_first_chunk_s)
    if attempt.input_messages:
        attributes[GEN_AI_INPUT_MESSAGES] = messages_json(attempt.input_messages)
    if attempt.output_messages:
        attributes[GEN_AI_OUTPUT_MESSAGES] = messages_json(attempt.output_messages)
    if attempt.finish_reasons:
        attributes[GEN_AI_RESPONSE_FINISH_REASONS] = list(attempt.finish_reasons)
        if openinference:
            attributes[LLM_FINISH_REASON] = attempt.finish_reasons[0]
    usage = attempt.usage
    if usage is not None:
        for gen_ai_name, openinference_name, value in (
            (GEN_AI_USAGE_INPUT_TOKENS, LLM_TOKEN_COUNT_PROMPT, usage.input_tokens),
            (GEN_AI_USAGE_OUTPUT_TOKENS, LLM_TOKEN_COUNT_COMPLETION, usage.output_tokens),
            (None, LLM_TOKEN_COUNT_TOTAL, usage.total_tokens),
            (GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, LLM_TOKEN_COUNT_CACHE_READ, usage.cache_read_input_tokens),
            (GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, LLM_TOKEN_COUNT_CACHE_WRITE, usage.cache_creation_input_tokens),
            (GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, LLM_TOKEN_COUNT_REASONING, usage.reasoning_output_tokens),
        ):
            if value is not None:
                if gen_ai_name:
                    attributes[gen_ai_name] = value
                if openinference:
                    attributes[openinference_name] = value
    return attributes


def all_names() -> set[str]:
    """Every attribute name defined above (for the documentation test)."""
    return {value for key, value in globals().items()
            if key.isupper() and isinstance(value, str) and "." in value and not key.endswith("_PREFIX")}
