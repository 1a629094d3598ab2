"""The only module that reads litellm's hook arguments: kwargs and responses -> `model` records.

Organised by the trust boundary (docs/design.md, "Trust boundary"):

- PROXY-OWNED fields are written by the proxy's auth and routing, and are read only from
  where the proxy writes them: its request metadata (`litellm_metadata` on the routes that
  keep the client's `metadata` body field for the provider, `/v1/responses` and
  `/v1/messages`; `metadata` elsewhere), `proxy_server_request` (built by the proxy from the
  HTTP request it received), the deployment the router picked, and litellm's own cost.
- CLIENT-CONTROLLED values (the request body, header values, the model name, tags, the call
  id) are read only as labels: truncated, never for identity, timing or trace structure.

Every reader tolerates missing keys and odd types, because hook arguments differ between
litellm releases and call types; every value it returns is one the OTLP encoder accepts
(strings valid UTF-8 and bounded, integers within int64, floats finite).
"""

from __future__ import annotations

import datetime
import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from pydantic import BaseModel  # litellm's answers are pydantic models (pydantic comes with litellm)

from .model import Answer, Attempt, Attribution, Message, Request, RequestKey, Success, Usage

# Operation names of the GenAI conventions, by litellm call type.
_OPERATIONS = {
    "acompletion": "chat", "completion": "chat",
    "atext_completion": "text_completion", "text_completion": "text_completion",
    "aembedding": "embeddings", "embedding": "embeddings", "embeddings": "embeddings",
    "aresponses": "chat", "responses": "chat",
    "anthropic_messages": "chat",
    # Not (yet) in the GenAI conventions' list, which allows custom values.
    "aimage_generation": "image_generation", "image_generation": "image_generation",
    "atranscription": "audio_transcription", "transcription": "audio_transcription",
}
# Finish reasons in the OpenAI vocabulary the chat route uses, from the Anthropic Messages
# API's stop_reason and the Responses API's status / incomplete reason.
_FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
    "pause_turn": "stop", "refusal": "content_filter",
    "completed": "stop", "max_output_tokens": "length", "content_filter": "content_filter", "failed": "error",
    "cancelled": "error",
}
_INT64_MAX = 2**63 - 1


# --- plain values: every value leaves here valid for OTLP -------------------------------------

def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    # The hooks' arguments are plain dicts, responses pydantic objects: an ABC isinstance
    # check per read costs several times more, dozens of times per request, so it is made
    # once per type (`_SHAPES`).
    shape = _SHAPES.get(type(value))
    if shape is None:
        shape = _shape_of(value)
    return shape is True


def as_mapping(value: object) -> Mapping[str, Any]:
    if type(value) is dict:  # nearly always
        return value
    return value if _is_mapping(value) else {}


def _get(obj: object, name: str) -> Any:
    kind = type(obj)
    if kind is dict:
        return obj.get(name)  # type: ignore[attr-defined]
    shape = _SHAPES.get(kind)
    if shape is None:
        shape = _shape_of(obj)
    if shape is True:
        return obj.get(name)  # type: ignore[attr-defined]
    if shape is False or name in shape:
        return getattr(obj, name, None)
    # A pydantic model's fields are in its __dict__, its extras in __pydantic_extra__; getattr
    # of an absent one raises inside pydantic (~4 µs), and litellm's answers lack some of the
    # fields read here on every request.
    found = obj.__dict__.get(name, _ABSENT)
    if found is _ABSENT:
        extra = obj.__pydantic_extra__  # type: ignore[attr-defined]
        found = extra.get(name) if extra else None
    return found


_ABSENT = object()
_PYDANTIC_GETATTR = getattr(BaseModel, "__getattr__", None)
# How to read a type's fields, decided once per type: True a Mapping, False getattr, or for a
# pydantic model that reads attributes as BaseModel does the names its classes define (a
# property wins over a field).
_SHAPES: dict[type, bool | frozenset[str]] = {dict: True}
_MAX_SHAPES = 1024  # bounded, though a proxy meets a few dozen types at most


def _shape_of(obj: object) -> bool | frozenset[str]:
    kind = type(obj)
    shape: bool | frozenset[str] = isinstance(obj, Mapping)
    if not shape and isinstance(obj, BaseModel) and _PYDANTIC_GETATTR is not None \
            and getattr(kind, "__getattr__", None) is _PYDANTIC_GETATTR and hasattr(obj, "__dict__"):
        shape = frozenset(name for klass in kind.__mro__ for name in vars(klass))
    if len(_SHAPES) >= _MAX_SHAPES:
        _SHAPES.clear()
        _SHAPES[dict] = True
    _SHAPES[kind] = shape
    return shape


def text_of(value: object, limit: int) -> str | None:
    """A non-empty string, at most `limit` characters, encodable as UTF-8 (lone surrogates,
    which no OTLP encoder accepts, become "?")."""
    if type(value) is str and len(value) <= limit and value.isascii():
        return value or None  # the common case, at once
    if not isinstance(value, str) or not value:
        return None
    if len(value) > limit:
        value = value[:limit]
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _count_or_none(value: object) -> int | None:
    """A count: a non-negative integer within int64 (a float only if integral)."""
    if type(value) is int:  # nearly always
        return value if 0 <= value <= _INT64_MAX else None
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():  # (never true of NaN or infinity)
        value = int(value)
    return value if isinstance(value, int) and 0 <= value <= _INT64_MAX else None


def _float_or_none(value: object) -> float | None:
    """A number as a float (NaN and infinity included: the callers' range checks refuse them)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float
        return None


def time_ns_of(value: object) -> int | None:
    """Epoch nanoseconds from a datetime (naive = local time, as litellm uses) or an epoch
    float; None for anything that is no time at all. Plausibility is the lifecycle's call."""
    if isinstance(value, datetime.datetime):
        try:
            return int(value.timestamp() * 1e9)
        except (OverflowError, OSError, ValueError):
            return None
    seconds = _float_or_none(value)
    if seconds is None or not 0 < seconds < 2**63 / 1e9:
        return None
    return int(seconds * 1e9)


# --- where the proxy keeps its facts ---------------------------------------------------------

@dataclass(slots=True)
class HookArgs:
    """One hook's kwargs with the proxy's places resolved once: its per-request dict, its
    request metadata, and the deployment's litellm_params."""

    kwargs: Mapping[str, Any]
    proxy_request: Mapping[str, Any] | None  # the same object in every hook of one proxy request
    metadata: Mapping[str, Any]  # the proxy's (and router's) request metadata
    litellm_params: Mapping[str, Any]

    @property
    def on_proxy(self) -> bool:
        return self.proxy_request is not None


def _proxy_metadata(container: Mapping[str, Any]) -> Mapping[str, Any]:
    # litellm's own rule (get_litellm_metadata_from_kwargs): `litellm_metadata` when present.
    # On /v1/responses and /v1/messages the proxy writes there, and `metadata` is the client's
    # body field; elsewhere the proxy drops `litellm_metadata` and writes over `metadata`.
    found = container.get("litellm_metadata")
    if _is_mapping(found) and found:
        return found
    return as_mapping(container.get("metadata"))


def hook_args(kwargs: object) -> HookArgs:
    """Deployment hooks carry the proxy's places at the top level, log events under
    litellm_params."""
    kwargs = as_mapping(kwargs)
    litellm_params = as_mapping(kwargs.get("litellm_params"))
    proxy_request = kwargs.get("proxy_server_request")
    if proxy_request is None:
        proxy_request = litellm_params.get("proxy_server_request")
    metadata = _proxy_metadata(kwargs) or _proxy_metadata(litellm_params)
    return HookArgs(kwargs, proxy_request if _is_mapping(proxy_request) else None, metadata, litellm_params)


# Of a hook's kwargs, what is read after the hook has returned (by `request_key`, `new_request`,
# `new_attempt`): a slim copy is kept instead of the kwargs, whose other values (the success
# event's logging payload, say) are young objects of the proxy that would otherwise live on.
_KEPT_KWARGS = ("litellm_call_id", "litellm_trace_id", "litellm_session_id", "user", "model", "model_info",
                "custom_llm_provider", "api_base", "stream", "call_type")


def kept_args(args: HookArgs) -> HookArgs:
    """`args` with only the kwargs read later (the proxy's metadata and request dicts, which
    live as long as the request, stay as they are)."""
    kwargs = args.kwargs
    return HookArgs({name: kwargs[name] for name in _KEPT_KWARGS if name in kwargs}, args.proxy_request,
                    args.metadata, args.litellm_params)


# --- keys: which in-flight request a hook belongs to -------------------------------------------

def request_key(args: HookArgs) -> RequestKey | None:
    call_id = _plain_str(args.kwargs.get("litellm_call_id"))
    if args.proxy_request is not None and call_id:
        return RequestKey("proxy", call_id, id(args.proxy_request))
    trace_id = _plain_str(args.kwargs.get("litellm_trace_id") or args.litellm_params.get("litellm_trace_id"))
    if trace_id:
        return RequestKey("router", trace_id)
    return RequestKey("call", call_id) if call_id else None


def _plain_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def call_id_of(args: HookArgs) -> str | None:
    return _plain_str(args.kwargs.get("litellm_call_id"))


# --- proxy-owned: identity, receipt, trace context, configuration ------------------------------

def received_ns_of(args: HookArgs) -> int | None:
    """When the proxy received the request: stamped by its auth, in the proxy's metadata."""
    received = time_ns_of(args.metadata.get("litellm_received_at"))
    if received is None and args.proxy_request is not None:
        received = time_ns_of(args.proxy_request.get("arrival_time"))
    return received


def parent_hint_of(args: HookArgs) -> object:
    """What to parent the request span on: the proxy's own request span (litellm's "otel"
    callback made one) if any, else the HTTP headers the proxy received (a W3C traceparent
    there is the client's trace). Never anything from the request body."""
    span = args.metadata.get("litellm_parent_otel_span")
    if span is not None:
        return span
    headers = as_mapping(args.proxy_request).get("headers")
    return headers if _is_mapping(headers) else None


def attribution_of(args: HookArgs, limit: int) -> Attribution:
    """The proxy's view of who sent the request: its auth wrote the key hash and alias, team,
    org and user into its metadata (after removing any `user_api_key_*` a client sent)."""
    metadata = args.metadata
    tags = metadata.get("tags")
    end_user = metadata.get("user_api_key_end_user_id") or args.kwargs.get("user")
    return Attribution(
        team_id=text_of(metadata.get("user_api_key_team_id"), limit),
        team_alias=text_of(metadata.get("user_api_key_team_alias"), limit),
        org_id=text_of(metadata.get("user_api_key_org_id"), limit),
        key_alias=text_of(metadata.get("user_api_key_alias"), limit),
        key_hash=text_of(metadata.get("user_api_key_hash"), limit),
        user_id=text_of(metadata.get("user_api_key_user_id"), limit),
        end_user_id=text_of(end_user, limit),
        tags=tuple(found for tag in tags[:_MAX_TAGS] if (found := text_of(tag, limit)))
        if isinstance(tags, (list, tuple)) else (),
    )


_MAX_TAGS = 32


def session_id_of(args: HookArgs, limit: int) -> str | None:
    """litellm's session id (`litellm_session_id`: the body's, or the proxy's from the
    `x-litellm-session-id` header): client-chosen, a label only."""
    session = args.kwargs.get("litellm_session_id") or args.litellm_params.get("litellm_session_id")
    return text_of(session, limit)


def client_trace_id_of(args: HookArgs) -> str | None:
    """The trace id of the client's W3C `traceparent` header (client-chosen)."""
    headers = as_mapping(as_mapping(args.proxy_request).get("headers"))
    parts = str(headers.get("traceparent") or "").split("-")
    return parts[1] if len(parts) >= 4 and len(parts[1]) == 32 else None


def configured_groups() -> frozenset[str] | set[str] | None:
    """The model group names the running proxy's router serves (wildcard patterns included),
    or None outside the proxy."""
    proxy_server = sys.modules.get("litellm.proxy.proxy_server")
    router = getattr(proxy_server, "llm_router", None)
    names = getattr(router, "model_names", None)
    if isinstance(names, (set, frozenset)):
        return names
    return set(names) if isinstance(names, (list, tuple)) else None


def new_request(args: HookArgs, now_ns: int, limit: int) -> Request:
    """A request as its first hook shows it. The group is the one asked for only when the
    configuration has it; the lifecycle takes the routed attempt's group otherwise."""
    body_model = as_mapping(as_mapping(args.proxy_request).get("body")).get("model")
    if args.on_proxy:
        asked = body_model
        groups = configured_groups()
        group = asked if isinstance(asked, str) and groups is not None and asked in groups else None
    else:  # in-process the caller is the application itself, not an outside client
        metadata = args.metadata
        group = asked = metadata.get("original_model_group") or metadata.get("model_group") or args.kwargs.get("model")
    request = Request(call_id=text_of(call_id_of(args), limit) or "", received_ns=received_ns_of(args) or now_ns,
                      attribution=attribution_of(args, limit))
    request.model_group = text_of(group, limit) or request.model_group
    request.requested_model = text_of(asked, limit)
    request.session_id = session_id_of(args, limit)
    if args.on_proxy:
        request.parent = parent_hint_of(args)
    return request


# --- proxy-owned: the deployment the router picked -------------------------------------------

def operation_of(call_type: object) -> str:
    name = getattr(call_type, "value", call_type)
    return _OPERATIONS.get(name, "chat") if isinstance(name, str) else "chat"


def call_type_name(call_type: object) -> str | None:
    name = getattr(call_type, "value", call_type)
    return name if isinstance(name, str) and name else None


def new_attempt(args: HookArgs, call_type: object, start_ns: int, limit: int) -> Attempt:
    """An attempt as it starts, from the pre-call deployment hook's (or pre-API-call) kwargs,
    where the router has just written the deployment it picked."""
    kwargs, metadata, litellm_params = args.kwargs, args.metadata, args.litellm_params
    # Deployment hooks carry the deployment's model_info at the top level, log events only in
    # the router's metadata.
    model_info = as_mapping(kwargs.get("model_info")) or as_mapping(metadata.get("model_info"))
    deployment_model = text_of(kwargs.get("model"), limit)
    provider = text_of(kwargs.get("custom_llm_provider") or litellm_params.get("custom_llm_provider"), limit)
    if provider is None and deployment_model and "/" in deployment_model:
        provider = deployment_model.split("/", 1)[0]
    # The deployment's configured group; `model_group` is the name asked for, which on a
    # wildcard route is the client's own.
    group = text_of(metadata.get("deployment_model_name"), limit)
    call_type = call_type or kwargs.get("call_type")
    return Attempt(
        number=0,
        start_ns=start_ns,
        model_group=group,
        deployment_model=deployment_model,
        deployment_id=text_of(model_info.get("id"), limit),
        provider=provider,
        api_base=text_of(kwargs.get("api_base") or litellm_params.get("api_base"), 2048),
        fallback_depth=_count_or_none(metadata.get("attempted_fallbacks")) or 0,
        operation=operation_of(call_type),
        call_type=call_type_name(call_type),
        stream=kwargs.get("stream") is True,
        wildcard=group is not None and "*" in group,
    )


# --- the provider's answer (usage, finish reasons): bounded like everything else -------------

def usage_of(response: object) -> Usage | None:
    """Token counts as the provider reported them: OpenAI chat-style usage (litellm's Usage),
    or the Responses or Anthropic Messages API's."""
    usage = _get(response, "usage")
    if usage is None:
        return None
    prompt = _count_or_none(_get(usage, "prompt_tokens"))
    completion = _count_or_none(_get(usage, "completion_tokens"))
    if prompt is None and completion is None:
        return _api_usage(usage)
    return _usage(prompt, completion, _count_or_none(_get(usage, "total_tokens")),
                  _count_or_none(_get(_get(usage, "prompt_tokens_details"), "cached_tokens")),
                  _count_or_none(_get(usage, "cache_creation_input_tokens")),
                  _count_or_none(_get(_get(usage, "completion_tokens_details"), "reasoning_tokens")))


def _api_usage(usage: object) -> Usage | None:
    """The Responses API's usage (`input_tokens` include the cached ones) or the Anthropic
    Messages API's (`input_tokens` leave out the cache reads and writes)."""
    prompt = _count_or_none(_get(usage, "input_tokens"))
    cache_read = _count_or_none(_get(_get(usage, "input_tokens_details"), "cached_tokens"))
    anthropic_read = _count_or_none(_get(usage, "cache_read_input_tokens"))
    cache_write = _count_or_none(_get(usage, "cache_creation_input_tokens"))
    if prompt is not None and (anthropic_read or cache_write):
        prompt += (anthropic_read or 0) + (cache_write or 0)  # counted as the GenAI conventions count
    return _usage(prompt, _count_or_none(_get(usage, "output_tokens")), _count_or_none(_get(usage, "total_tokens")),
                  cache_read if cache_read is not None else anthropic_read, cache_write,
                  _count_or_none(_get(_get(usage, "output_tokens_details"), "reasoning_tokens")))


def _usage(prompt: int | None, completion: int | None, total: int | None, cache_read: int | None,
           cache_write: int | None, reasoning: int | None) -> Usage | None:
    if prompt is None and completion is None:
        return None
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return Usage(input_tokens=prompt, output_tokens=completion, total_tokens=total, cache_read_input_tokens=cache_read,
                 cache_creation_input_tokens=cache_write, reasoning_output_tokens=reasoning)


def finish_reasons_of(response: object, limit: int) -> tuple[str, ...]:
    """One per choice (chat, text completion); from stop_reason (Messages API) or from status
    and incomplete reason (Responses API), mapped to the chat route's vocabulary."""
    choices = _get(response, "choices")
    if isinstance(choices, (list, tuple)):
        reasons = (text_of(_get(choice, "finish_reason"), limit) for choice in choices)
        return tuple(reason for reason in reasons if reason)
    if _get(response, "object") == "response":
        status = _get(response, "status")
        reason = _get(_get(response, "incomplete_details"), "reason") if status == "incomplete" else status
    else:
        reason = _get(response, "stop_reason")
    found = text_of(reason, limit)
    return (_FINISH_REASONS.get(found, found),) if found else ()


def answer_of(response: object, limit: int) -> Answer:
    return Answer(usage_of(response), finish_reasons_of(response, limit), text_of(_get(response, "id"), limit),
                  text_of(_get(response, "model"), limit))


# --- proxy-owned: litellm's cost and timing, from the success event ----------------------------

_MAX_COST_USD = 1e9  # no single request costs a billion dollars: beyond it, a value is garbled


def _cost_or_none(value: object) -> float | None:
    cost = _float_or_none(value)
    return cost if cost is not None and 0 <= cost < _MAX_COST_USD else None


def cost_of(kwargs: Mapping[str, Any]) -> float | None:
    """litellm's own cost for the answering attempt (None when litellm could not price it)."""
    cost = _cost_or_none(kwargs.get("response_cost"))
    if cost is None:
        cost = _cost_or_none(as_mapping(kwargs.get("standard_logging_object")).get("response_cost"))
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
    reason = _plain_str(as_mapping(diagnostic).get("reason"))
    if reason or cost is None:
        return text_of(reason, 200) or "litellm gave no cost"
    params = as_mapping(kwargs.get("litellm_params"))
    sources = (params, as_mapping(params.get("model_info")))
    if any(source.get(key) is not None for source in sources for key in _PRICE_KEYS):
        return None  # explicitly priced, at zero
    used_tokens = usage is not None and bool((usage.input_tokens or 0) + (usage.output_tokens or 0))
    return "no price known for this model" if used_tokens else None


def success_of(args: HookArgs, response: object, start_time: object, end_time: object, limit: int) -> Success:
    kwargs = args.kwargs
    logged = as_mapping(kwargs.get("standard_logging_object"))
    hidden = as_mapping(logged.get("hidden_params"))
    prompt, completion = _count_or_none(logged.get("prompt_tokens")), _count_or_none(logged.get("completion_tokens"))
    stream = kwargs.get("stream") is True or logged.get("stream") is True
    return Success(
        cost_usd=cost_of(kwargs) or 0.0,
        response=response,
        start_ns=time_ns_of(start_time),
        end_ns=time_ns_of(end_time),
        stream=stream,
        first_chunk_ns=time_ns_of(kwargs.get("completion_start_time")) if stream else None,
        api_call_start_ns=time_ns_of(kwargs.get("api_call_start_time")) if stream else None,
        logged_usage=Usage(input_tokens=prompt, output_tokens=completion,
                           total_tokens=_count_or_none(logged.get("total_tokens")))
        if prompt is not None or completion is not None else None,
        model_group=text_of(args.metadata.get("deployment_model_name") or logged.get("model_group"), limit),
        deployment_id=text_of(logged.get("model_id"), limit),
        provider=text_of(logged.get("custom_llm_provider"), limit),
        api_base=text_of(logged.get("api_base") or hidden.get("api_base"), 2048),
    )


def error_type_of(exception: object) -> str:
    """A low-cardinality error type: the exception's class name."""
    return type(exception).__name__ if isinstance(exception, BaseException) else "_OTHER"


# --- content capture (opt-in only): client and provider text, truncated ------------------------

def _message_text(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a multimodal list."""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "".join(str(_get(part, "text") or "") for part in content
                       if _get(part, "type") in ("text", "input_text", "output_text"))
    return ""


def _truncated(messages: list[tuple[object, str, object]], max_chars: int) -> tuple[Message, ...]:
    """Messages whose texts together hold at most max_chars characters (those past the budget
    are left out, so the number of messages is bounded too)."""
    budget, kept = max_chars, []
    for role, text, finish_reason in messages:
        if budget <= 0:
            break
        shown = text[:budget]
        budget -= max(len(shown), 1)
        cut = "…" if len(shown) < len(text) else ""
        kept.append(Message(text_of(role, 64) or "user", (text_of(shown, max_chars) or "") + cut,
                            text_of(finish_reason, 64)))
    return tuple(kept)


def input_messages_of(kwargs: Mapping[str, Any], max_chars: int) -> tuple[Message, ...]:
    messages = kwargs.get("messages")
    if not isinstance(messages, (list, tuple)):
        return ()
    return _truncated([(_get(m, "role"), _message_text(_get(m, "content")), None) for m in messages], max_chars)


def output_messages_of(response: object, max_chars: int) -> tuple[Message, ...]:
    choices = _get(response, "choices")
    if not isinstance(choices, (list, tuple)):
        return ()
    found: list[tuple[object, str, object]] = []
    for choice in choices:
        message = _get(choice, "message") or _get(choice, "delta")
        reason = _get(choice, "finish_reason")
        found.append((_get(message, "role") or "assistant", _message_text(_get(message, "content")), reason))
    return _truncated(found, max_chars)


@functools.lru_cache(maxsize=256)  # a proxy has a handful of endpoints; parsing each is not free
def server_address_of(api_base: str | None) -> tuple[str | None, int | None]:
    if not api_base:
        return None, None
    try:
        parts = urlsplit(api_base)
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None, None
