"""The test gateway: the proxy configs the tests run, the keys and prices they use, the
plugin's environment, and waiting for a request's spans. Plain helpers; the pytest fixtures
that start the proxies are in tests/conftest.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml

from .fake_llm import FakeLLMServer
from .otlp_receiver import OtlpReceiver
from .proxy import free_port
from .traces import RequestTrace, traces_for_call

PLUGIN = "litellm_cost_otel.proxy_handler_instance"
# Secrets the privacy test looks for in every exported attribute.
PROVIDER_KEY = "sk-mistral-test-" + "7f3a9c2e" * 4
LOCAL_KEY = "sk-local-test-" + "b1d4e6f8" * 4
LOCAL_INPUT_PRICE = 0.000001
LOCAL_OUTPUT_PRICE = 0.000002
EMBED_PRICE = 5e-7
# Keys of the custom auth (team_auth.py): `sk-<team>-...` belongs to team <team>.
TEAM_KEYS = {"payments": f"sk-payments-{uuid.uuid4().hex}", "search": f"sk-search-{uuid.uuid4().hex}"}
AUTH_DELAY_S = 0.15  # with `x-test-auth-delay`, the custom auth takes this long, after the proxy's receipt

# The custom auth giving keys a team (its module: importable wherever the proxy runs).
TEAM_AUTH = "litellm_cost_otel.devtools.team_auth.user_api_key_auth"


def mock(group: str, model: str, reply: str, **extra: Any) -> dict[str, Any]:
    return {"model_name": group, "litellm_params": {"model": model, "api_key": PROVIDER_KEY,
                                                    "mock_response": reply, **extra}}


def gateway_config(callbacks: list[str]) -> dict[str, Any]:
    """The groups the tests send traffic to."""
    return {
        "model_list": [
            mock("fast", "mistral/mistral-small-latest", "Hello from the fast model."),
            mock("capable", "mistral/mistral-large-latest", "Hello from the capable model."),
            mock("fast-outage", "mistral/mistral-small-latest", "litellm.RateLimitError"),
            mock("doomed", "mistral/mistral-large-latest", "litellm.InternalServerError"),
            mock("doomed-backup", "mistral/mistral-small-latest", "litellm.RateLimitError"),
            {"model_name": "local", "litellm_params": {
                "model": "openai/local-model", "api_base": "os.environ/LOCAL_MODEL_BASE_URL",
                "api_key": LOCAL_KEY, "input_cost_per_token": LOCAL_INPUT_PRICE,
                "output_cost_per_token": LOCAL_OUTPUT_PRICE}},
        ],
        "router_settings": {
            "num_retries": 1, "retry_after": 0,
            "fallbacks": [{"fast-outage": ["capable"]}, {"doomed": ["doomed-backup"]}],
        },
        "litellm_settings": {"callbacks": callbacks},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def proxy_env(receiver: OtlpReceiver | str, fake_llm: FakeLLMServer, **extra: str) -> dict[str, str]:
    """The plugin exporting to a test receiver (or any OTLP/gRPC endpoint URL)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver if isinstance(receiver, str) else receiver.endpoint,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "LOCAL_MODEL_BASE_URL": fake_llm.base_url,
        **extra,
    }


def wait_for_request(receiver: OtlpReceiver, call_id: str, attempts: int, count: int = 1,
                     timeout: float = 20.0) -> list[RequestTrace]:
    """The request traces with this call id, once `count` of them have all their attempts."""
    def ready(spans: list[Any]) -> bool:
        found = traces_for_call(spans, call_id)
        return len(found) >= count and all(len(t.attempts) >= attempts for t in found)

    return traces_for_call(receiver.wait_for(ready, timeout), call_id)


def routes_config(fake_base_url: str) -> dict[str, Any]:
    """A deployment for every route that spends money, answered by the fake server; two that
    cannot be reached, falling back to them; the team auth."""
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nobody listens: every attempt fails to connect

    def deployment(group: str, model: str, api_base: str = fake_base_url, **extra: Any) -> dict[str, Any]:
        return {"model_name": group, "litellm_params": {"model": model, "api_base": api_base, "api_key": "k",
                                                        **extra}}

    prices: dict[str, Any] = {"input_cost_per_token": LOCAL_INPUT_PRICE, "output_cost_per_token": LOCAL_OUTPUT_PRICE}
    return {
        "model_list": [
            deployment("local", "openai/local-model", **prices),
            # Text completions get their own deployment: litellm re-registers an `openai/` one's
            # price under text-completion-openai, after which its /v1/responses calls price $0.
            deployment("local-text", "text-completion-openai/local-model", **prices),
            deployment("local-embed", "openai/local-embed", input_cost_per_token=EMBED_PRICE),
            deployment("claude-local", "anthropic/claude-haiku-4-5", api_base=fake_base_url.removesuffix("/v1")),
            {**deployment("local-image", "openai/local-image", input_cost_per_image=0.01),
             "model_info": {"mode": "image_generation"}},
            {**deployment("local-whisper", "openai/local-whisper", input_cost_per_second=0.0001),
             "model_info": {"mode": "audio_transcription"}},
            deployment("broken", "openai/local-model", api_base=dead, **prices),
            deployment("broken-claude", "anthropic/claude-haiku-4-5", api_base=dead.removesuffix("/v1")),
        ],
        "router_settings": {"num_retries": 1, "retry_after": 0,
                            "fallbacks": [{"broken": ["local"]}, {"broken-claude": ["claude-local"]}]},
        # A negotiated discount and a margin on Anthropic: litellm's final cost is not the list price.
        "litellm_settings": {"callbacks": [PLUGIN], "cost_discount_config": {"anthropic": 0.25},
                             "cost_margin_config": {"anthropic": {"fixed_amount": 0.001}}},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY",
                             "custom_auth": TEAM_AUTH},
    }


def budget_config(fake_base_url: str, budgets: list[dict[str, Any]], redis_url: str) -> dict[str, Any]:
    """The budget guard's test gateway: the fake server's priced `local` group, a `broken` one
    falling back to it, the team auth, and `budgets` on a shared Redis."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    prices = {"input_cost_per_token": LOCAL_INPUT_PRICE, "output_cost_per_token": LOCAL_OUTPUT_PRICE}

    def deployment(group: str, api_base: str) -> dict[str, Any]:
        return {"model_name": group, "litellm_params": {"model": "openai/local-model", "api_base": api_base,
                                                        "api_key": "k", **prices}}

    return {
        "model_list": [deployment("local", fake_base_url), deployment("broken", dead)],
        "router_settings": {"num_retries": 1, "retry_after": 0, "fallbacks": [{"broken": ["local"]}]},
        "litellm_settings": {"callbacks": [PLUGIN]},
        "callback_settings": {"litellm_cost_otel": {"budgets": budgets, "budget_store": "redis",
                                                    "budget_redis_url": redis_url}},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY", "custom_auth": TEAM_AUTH},
    }
