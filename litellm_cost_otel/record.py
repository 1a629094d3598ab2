"""Typed, OpenTelemetry-free records of one proxied LLM request, and the pure functions that
read them out of LiteLLM's hook arguments.

Nothing here imports OpenTelemetry or knows an attribute name: `attributes.py` maps these
records to each vocabulary and `spans.py` places them. Every reader tolerates missing keys and
odd types, because hook arguments differ between litellm releases and call paths.
"""

from __future__ import annotations

import datetime
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import urlsplit

# Operation names of the GenAI conventions, by litellm call type.
_OPERATIONS = {
    "acompletion": "chat", "completion": "chat",
    "atext_completion": "text_completion", "text_completion": "text_completion",
    "aembedding": "embeddings", "embedding": "embeddings",
    "aresponses": "chat", "responses": "chat",
    "anthropic_messages": "chat",
}


@dataclass(slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who the request is billed to, as the proxy's auth resolved it (never the raw key)."""

    team_id: str | None = None
    team_alias: str | None = None
    org_id: str | None = None
    key_alias: str | None = None
    key_hash: str | None = None
    user_id: str | None = None
    end_user_id: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """One message of captured content (only when the operator opted in), already truncated."""

    role: str
    text: str
    finish_reason: str | None = None


@dataclass(slots=True)
class Attempt:
    """One call to one deployment: the first try, a retry or a fallback hop."""

    number: int
    start_ns: int
    model_group: str | None = None
    deployment_model: str | None = None  # as configured, e.g. "mistral/mistral-small-latest"
    deployment_id: str | None = None
    provider: str | None = None  # litellm's custom_llm_provider, e.g. "mistral"
    api_base: str | None = None
    fallback_depth: int = 0
    operation: str = "chat"
    stream: bool = False
    end_ns: int | None = None
    error_type: str | None = None
    cost_usd: float = 0.0
    usage: Usage | None = None
    finish_reasons: tuple[str, ...] = ()
    response_model: str | None = None
    response_id: str | None = None
    time_to_first_chunk_s: float | None = None
    call_id: str | None = None  # in-process each attempt has its own; on the proxy all share one
    input_messages: tuple[Message, ...] = ()  # content capture only
    output_messages: tuple[Message, ...] = ()

    @property
    def request_model(self) -> str | None:
        """The model name sent on the wire: the deployment model without its provider prefix."""
        if not self.deployment_model:
            return None
        prefix = f"{self.provider}/" if self.provider else ""
        model = self.deployment_model
        return model[len(prefix):] if prefix and model.startswith(prefix) else model


@dataclass(slots=True)
class Request:
    """One request as the proxy saw it, from receipt to answer, with all its attempts."""

    call_id: str
    received_ns: int
    requested_group: str | None = None
    parent: Any = None  # opaque parent hint for spans.py: a span, a header mapping, or None
    attempts: list[Attempt] = field(default_factory=list)
    end_ns: int | None = None
    served_group: str | None = None
    error_type: str | None = None
    error_description: str | None = None
    time_to_first_chunk_s: float | None = None  # from receipt to the first streamed chunk
    attribution: Attribution = Attribution()

    @property
    def cost_usd(self) -> float:
        return sum((attempt.cost_usd for attempt in self.attempts), 0.0)

    @property
    def fallbacks(self) -> int:
        """Fallback hops taken: the deepest fallback level any attempt reached."""
        return max((attempt.fallback_depth for attempt in self.attempts), default=0)

    @property
    def open_attempt(self) -> Attempt | None:
        if self.attempts and self.attempts[-1].end_ns is None:
            return self.attempts[-1]
        return None


# --- readers: hook arguments -> plain values -------------------------------------------------

def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    # `type(...) is dict` first: the hooks' arguments are plain dicts, and an ABC isinstance
    # check costs several times more, dozens of times per request.
    return type(value) is dict or isinstance(value, Mapping)


def as_mapping(value: object) -> Mapping[str, Any]:
    return value if _is_mapping(value) else {}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value else None  # NaN is no cost


def time_ns_of(value: object) -> int | None:
    """Epoch nanoseconds from a datetime (naive = local time, as litellm uses) or epoch float."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1e9)
    number = _float_or_none(value)
    return int(number * 1e9) if number is not None and number > 0 else None


def now_ns() -> int:
    return time.time_ns()


def metadata_of(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Router metadata: top-level in deployment hooks, under litellm_params in log events."""
    metadata = as_mapping(kwargs.get("metadata"))
    if metadata:
        return metadata
    return as_mapping(as_mapping(kwargs.get("litellm_params")).get("metadata"))


def proxy_request_of(kwargs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The proxy's per-request dict: the same object in every hook of one proxy request."""
    found = kwargs.get("proxy_server_request")
    if found is None:
        found = as_mapping(kwargs.get("litellm_params")).get("proxy_server_request")
    return found if isinstance(found, Mapping) else None


def call_id_of(kwargs: Mapping[str, Any]) -> str | None:
    return _str_or_none(kwargs.get("litellm_call_id"))


def trace_id_of(kwargs: Mapping[str, Any]) -> str | None:
    found = kwargs.get("litellm_trace_id") or as_mapping(kwargs.get("litellm_params")).get("litellm_trace_id")
    return _str_or_none(found)


def operation_of(call_type: object) -> str:
    name = getattr(call_type, "value", call_type)
    return _OPERATIONS.get(name, "chat") if isinstance(name, str) else "chat"


def requested_group_of(kwargs: Mapping[str, Any]) -> str | None:
    """The model group the client asked for (the body's `model`), whatever answered."""
    body = as_mapping(as_mapping(proxy_request_of(kwargs)).get("body"))
    metadata = metadata_of(kwargs)
    return (_str_or_none(body.get("model")) or _str_or_none(metadata.get("original_model_group"))
            or _str_or_none(metadata.get("model_group")) or _str_or_none(kwargs.get("model")))


def received_ns_of(kwargs: Mapping[str, Any]) -> int | None:
    return time_ns_of(metadata_of(kwargs).get("litellm_received_at"))


def parent_hint_of(kwargs: Mapping[str, Any]) -> Any:
    """What to parent the request span on: the proxy's own request span (made by litellm's
    "otel" callback) if any, else the incoming headers (a W3C traceparent may be there)."""
    metadata = metadata_of(kwargs)
    span = metadata.get("litellm_parent_otel_span")
    if span is not None:
        return span
    headers = metadata.get("headers")
    return headers if isinstance(headers, Mapping) else None


def attribution_of(kwargs: Mapping[str, Any]) -> Attribution:
    """The proxy's view of who sent the request: key hash and alias, team, org, user."""
    metadata = metadata_of(kwargs)
    tags = metadata.get("tags")
    return Attribution(
        team_id=_str_or_none(metadata.get("user_api_key_team_id")),
        team_alias=_str_or_none(metadata.get("user_api_key_team_alias")),
        org_id=_str_or_none(metadata.get("user_api_key_org_id")),
        key_alias=_str_or_none(metadata.get("user_api_key_alias")),
        key_hash=_str_or_none(metadata.get("user_api_key_hash")),
        user_id=_str_or_none(metadata.get("user_api_key_user_id")),
        end_user_id=_str_or_none(metadata.get("user_api_key_end_user_id")) or _str_or_none(kwargs.get("user")),
        tags=tuple(tag for tag in tags if isinstance(tag, str)) if isinstance(tags, (list, tuple)) else (),
    )


def _text_of(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a multimodal list."""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "".join(str(_get(part, "text") or "") for part in content if _get(part, "type") == "text")
    return ""


def _truncated(messages: list[tuple[str, str, str | None]], max_chars: int) -> tuple[Message, ...]:
    """Messages whose texts together hold at most max_chars characters."""
    budget, kept = max_chars, []
    for role, text, finish_reason in messages:
        shown = text[:budget]
        budget -= len(shown)
        kept.append(Message(role, shown + ("…" if len(shown) < len(text) else ""), finish_reason))
    return tuple(kept)


def input_messages_of(kwargs: Mapping[str, Any], max_chars: int) -> tuple[Message, ...]:
    messages = kwargs.get("messages")
    if not isinstance(messages, (list, tuple)):
        return ()
    return _truncated([(str(_get(m, "role") or "user"), _text_of(_get(m, "content")), None) for m in messages],
                      max_chars)


def output_messages_of(response: object, max_chars: int) -> tuple[Message, ...]:
    choices = _get(response, "choices")
    if not isinstance(choices, (list, tuple)):
        return ()
    found = []
    for choice in choices:
        message = _get(choice, "message") or _get(choice, "delta")
        reason = _get(choice, "finish_reason")
        found.append((str(_get(message, "role") or "assistant"), _text_of(_get(message, "content")),
                      reason if isinstance(reason, str) else None))
    return _truncated(found, max_chars)


def error_type_of(exception: object) -> str:
    """A low-cardinality error type: the exception's class name."""
    if exception is None:
        return "_OTHER"
    return type(exception).__name__ if isinstance(exception, BaseException) else "_OTHER"


def new_attempt(kwargs: Mapping[str, Any], number: int, call_type: object, start_ns: int) -> Attempt:
    """An attempt as it starts, from the pre-call deployment hook's (or pre-API-call) kwargs."""
    metadata = metadata_of(kwargs)
    model_info = as_mapping(kwargs.get("model_info")) or as_mapping(metadata.get("model_info"))
    litellm_params = as_mapping(kwargs.get("litellm_params"))
    depth = _int_or_none(kwargs.get("fallback_depth")) or _int_or_none(metadata.get("attempted_fallbacks")) or 0
    deployment_model = _str_or_none(kwargs.get("model"))
    provider = (_str_or_none(kwargs.get("custom_llm_provider"))
                or _str_or_none(litellm_params.get("custom_llm_provider")))
    if provider is None and deployment_model and "/" in deployment_model:
        provider = deployment_model.split("/", 1)[0]
    return Attempt(
        number=number,
        start_ns=start_ns,
        model_group=_str_or_none(metadata.get("model_group")),
        deployment_model=deployment_model,
        deployment_id=_str_or_none(model_info.get("id")) or _str_or_none(kwargs.get("model_id")),
        provider=provider,
        api_base=_str_or_none(kwargs.get("api_base")) or _str_or_none(litellm_params.get("api_base")),
        fallback_depth=max(depth, 0),
        operation=operation_of(call_type or kwargs.get("call_type")),
        stream=kwargs.get("stream") is True,
    )


def _get(obj: object, name: str) -> Any:
    if _is_mapping(obj):
        return obj.get(name)
    return getattr(obj, name, None)


def usage_of(response: object) -> Usage | None:
    """Token counts as the provider reported them (OpenAI-style usage, litellm's Usage)."""
    usage = _get(response, "usage")
    if usage is None:
        return None
    prompt_details = _get(usage, "prompt_tokens_details")
    completion_details = _get(usage, "completion_tokens_details")
    found = Usage(
        input_tokens=_int_or_none(_get(usage, "prompt_tokens")),
        output_tokens=_int_or_none(_get(usage, "completion_tokens")),
        total_tokens=_int_or_none(_get(usage, "total_tokens")),
        cache_read_input_tokens=_int_or_none(_get(prompt_details, "cached_tokens"))
        or _int_or_none(_get(usage, "cache_read_input_tokens")),
        cache_creation_input_tokens=_int_or_none(_get(usage, "cache_creation_input_tokens")),
        reasoning_output_tokens=_int_or_none(_get(completion_details, "reasoning_tokens")),
    )
    if found.input_tokens is None and found.output_tokens is None:
        return None
    return found


def finish_reasons_of(response: object) -> tuple[str, ...]:
    choices = _get(response, "choices")
    if not isinstance(choices, (list, tuple)):
        return ()
    return tuple(reason for choice in choices if isinstance(reason := _get(choice, "finish_reason"), str))


def apply_response(attempt: Attempt, response: object) -> None:
    """Fill what a successful response tells: tokens, finish reasons, response id and model."""
    attempt.usage = usage_of(response) or attempt.usage
    attempt.finish_reasons = finish_reasons_of(response) or attempt.finish_reasons
    attempt.response_id = _str_or_none(_get(response, "id")) or attempt.response_id
    attempt.response_model = _str_or_none(_get(response, "model")) or attempt.response_model


def cost_of(kwargs: Mapping[str, Any]) -> float | None:
    """litellm's own cost for the answering attempt (None when litellm could not price it)."""
    cost = _float_or_none(kwargs.get("response_cost"))
    if cost is None:
        cost = _float_or_none(as_mapping(kwargs.get("standard_logging_object")).get("response_cost"))
    return cost


_PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token", "input_cost_per_second", "output_cost_per_second")


def zero_cost_reason_of(kwargs: Mapping[str, Any], usage: Usage | None) -> str | None:
    """Why an answer that used tokens cost $0, when the configuration did not say it is free:
    litellm's own diagnostic (e.g. "missing_pricing_key"), or "no price known for this model"
    (litellm silently prices unknown models at 0). None when the cost is real or meant."""
    cost = cost_of(kwargs)
    if cost:
        return None
    diagnostic = kwargs.get("zero_cost_diagnostic") or as_mapping(
        kwargs.get("standard_logging_object")).get("zero_cost_diagnostic")
    reason = _str_or_none(as_mapping(diagnostic).get("reason"))
    if reason or cost is None:
        return reason or "litellm gave no cost"
    params = as_mapping(kwargs.get("litellm_params"))
    sources = (params, as_mapping(params.get("model_info")))
    if any(source.get(key) is not None for source in sources for key in _PRICE_KEYS):
        return None  # explicitly priced, at zero
    used_tokens = usage is not None and bool((usage.input_tokens or 0) + (usage.output_tokens or 0))
    return "no price known for this model" if used_tokens else None


def apply_success_event(request: Request, attempt: Attempt, kwargs: Mapping[str, Any],
                        response: object, end_ns: int) -> None:
    """Complete the answering attempt and the request from the success log event."""
    logged = as_mapping(kwargs.get("standard_logging_object"))
    hidden = as_mapping(logged.get("hidden_params"))
    apply_response(attempt, response)
    if attempt.response_model in (attempt.model_group, request.requested_group):
        # The proxy renames the response's model to the group asked for; a group is not a
        # model, so report the model the deployment was asked for instead.
        attempt.response_model = attempt.request_model
    attempt.cost_usd = cost_of(kwargs) or 0.0
    attempt.end_ns = attempt.end_ns or end_ns
    attempt.model_group = _str_or_none(logged.get("model_group")) or attempt.model_group
    attempt.deployment_id = _str_or_none(logged.get("model_id")) or attempt.deployment_id
    attempt.provider = _str_or_none(logged.get("custom_llm_provider")) or attempt.provider
    attempt.api_base = attempt.api_base or _str_or_none(logged.get("api_base")) or _str_or_none(hidden.get("api_base"))
    if attempt.usage is None:  # e.g. a stream whose provider sent no usage chunk
        attempt.usage = Usage(input_tokens=_int_or_none(logged.get("prompt_tokens")),
                              output_tokens=_int_or_none(logged.get("completion_tokens")),
                              total_tokens=_int_or_none(logged.get("total_tokens")))
    if kwargs.get("stream") is True or logged.get("stream") is True:
        attempt.stream = True
        first_chunk_ns = time_ns_of(kwargs.get("completion_start_time"))
        api_start_ns = time_ns_of(kwargs.get("api_call_start_time")) or attempt.start_ns
        if first_chunk_ns is not None:
            attempt.time_to_first_chunk_s = max(first_chunk_ns - api_start_ns, 0) / 1e9
            request.time_to_first_chunk_s = max(first_chunk_ns - request.received_ns, 0) / 1e9
    request.served_group = attempt.model_group
    request.end_ns = attempt.end_ns


@functools.lru_cache(maxsize=256)  # a proxy has a handful of endpoints; parsing each is not free
def server_address_of(api_base: str | None) -> tuple[str | None, int | None]:
    if not api_base:
        return None, None
    try:
        parts = urlsplit(api_base)
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None, None
