"""The real parts every test shares, started once a session: an OTLP/gRPC receiver, a fake
OpenAI/Anthropic-compatible server on 127.0.0.1, and the litellm proxy as a subprocess with
the plugin (the configs and plain helpers are in litellm_cost_otel/devtools/gateway.py)."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before anything imports litellm
# In-process plugin instances export only where a test points them (no stray localhost:4317).
os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")

from collections.abc import Iterator

import pytest

from litellm_cost_otel.devtools.deploy_tools import RedisServer
from litellm_cost_otel.devtools.fake_llm import FakeLLMServer
from litellm_cost_otel.devtools.gateway import PLUGIN, gateway_config, proxy_env, routes_config, write_config
from litellm_cost_otel.devtools.otlp_receiver import OtlpReceiver
from litellm_cost_otel.devtools.proxy import LiteLLMProxy, free_port


@pytest.fixture(scope="session")
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server (Debian's, fetched by `make deploy-tools`), for the budget guard."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxy(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver,
          fake_llm: FakeLLMServer) -> Iterator[LiteLLMProxy]:
    """The main proxy: the plugin alone, service name and resource attributes from OTEL_*."""
    config = write_config(tmp_path_factory.mktemp("proxy") / "config.yaml", gateway_config([PLUGIN]))
    env = proxy_env(receiver, fake_llm, OTEL_SERVICE_NAME="test-gateway",
                    OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci")
    with LiteLLMProxy(config, env) as running:
        yield running


@pytest.fixture
def healthy_proxy(proxy: LiteLLMProxy) -> LiteLLMProxy:
    """The main proxy, as the healthy baseline of a fault test (its collector works)."""
    return proxy


@pytest.fixture(scope="session")
def routes_proxy(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver,
                 fake_llm: FakeLLMServer) -> Iterator[LiteLLMProxy]:
    """Every route, team keys; exports as `routes-gateway`."""
    config = write_config(tmp_path_factory.mktemp("routes") / "config.yaml", routes_config(fake_llm.base_url))
    with LiteLLMProxy(config, proxy_env(receiver, fake_llm, OTEL_SERVICE_NAME="routes-gateway")) as running:
        yield running
