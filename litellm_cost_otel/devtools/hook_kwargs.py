"""The arguments the proxy passes to the plugin's hooks for one request, in the shape litellm
1.108.7 gives them (recorded from the real proxy; only the keys the plugin reads), for unit
tests and the micro-benchmark.

On `/v1/chat/completions`, `/v1/completions` and `/v1/embeddings` the proxy's metadata is
`metadata`; on `/v1/responses` and `/v1/messages` it is `litellm_metadata`, and `metadata`
is the client's own body field.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

TRACEPARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


@dataclass
class ProxyHooks:
    start: dict[str, Any]  # async_pre_call_deployment_hook(kwargs) and the deployment hooks' request_data
    success: dict[str, Any]  # async_log_success_event(kwargs)
    start_time: datetime.datetime
    end_time: datetime.datetime


def proxy_hooks(call_id: str = "call-1", group: str = "fast", model: str = "mistral/mistral-small-latest",
                metadata_key: str = "metadata", body: dict[str, Any] | None = None, cost: float = 0.5,
                **proxy_metadata: Any) -> ProxyHooks:
    """One request's hook arguments; `proxy_metadata` adds to (or overrides) what the proxy and
    router wrote; `body` is the client's request body."""
    received = datetime.datetime.now(datetime.timezone.utc)
    headers = {"host": "127.0.0.1:4000", "traceparent": TRACEPARENT, "content-type": "application/json"}
    body = {"model": group, "messages": [{"role": "user", "content": "Say hello."}], **(body or {})}
    psr = {"url": "http://127.0.0.1:4000/v1/chat/completions", "method": "POST", "headers": headers,
           "body": body, "arrival_time": received.timestamp()}  # the same object in every hook
    metadata = {
        "headers": headers, "litellm_received_at": received, "litellm_parent_otel_span": None,
        "user_api_key_hash": "h" * 64, "user_api_key_alias": "payments-service-key",
        "user_api_key_team_id": "payments-id", "user_api_key_team_alias": "payments", "user_api_key_org_id": "acme",
        "user_api_key_user_id": "payments-owner", "model_group": group, "deployment_model_name": group,
        "original_model_group": group, "attempted_fallbacks": 0, "attempted_retries": 0, "deployment": model,
        "model_info": {"id": "dep-1"}, "api_base": None, **proxy_metadata,
    }
    client_metadata = body.get("metadata") if metadata_key == "litellm_metadata" else None
    start: dict[str, Any] = {
        "litellm_call_id": call_id, "litellm_trace_id": f"trace-{call_id}", "model": model,
        "model_info": {"id": "dep-1"}, "proxy_server_request": psr, "messages": body.get("messages"),
        metadata_key: metadata, "stream": body.get("stream", False),
    }
    if client_metadata is not None:
        start["metadata"] = client_metadata
    litellm_params = {metadata_key: metadata, "proxy_server_request": psr, "litellm_call_id": call_id}
    if client_metadata is not None:
        litellm_params["metadata"] = client_metadata
    success = {
        "litellm_call_id": call_id, "litellm_trace_id": f"trace-{call_id}", "response_cost": cost,
        "messages": body.get("messages"), "stream": body.get("stream", False), "litellm_params": litellm_params,
        "standard_logging_object": {"model_group": group, "model_id": "dep-1", "response_cost": cost},
    }
    now = datetime.datetime.now()
    return ProxyHooks(start, success, now, now)


def chat_response(prompt_tokens: int = 3, completion_tokens: int = 2) -> dict[str, Any]:
    """An answer as the success hooks see it (litellm passes a ModelResponse; the plugin reads
    the same fields from either)."""
    return {"id": "chatcmpl-1", "model": "mistral-small-latest", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "The answer."}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}
