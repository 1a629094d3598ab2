"""The repository's own proxy_config.yaml and the offline demo, run for real."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from litellm_cost_otel import attributes as a
from litellm_cost_otel.devtools.demo import TRAFFIC
from litellm_cost_otel.devtools.gateway import PLUGIN, proxy_env, wait_for_request
from litellm_cost_otel.devtools.proxy import LiteLLMProxy

ROOT = Path(__file__).parent.parent


def test_proxy_config_declares_the_product_groups() -> None:
    config = yaml.safe_load((ROOT / "proxy_config.yaml").read_text())
    groups: dict[str, Any] = {}
    for deployment in config["model_list"]:  # the first deployment of each group
        groups.setdefault(deployment["model_name"], deployment["litellm_params"])
    assert groups["fast"]["model"] == "mistral/mistral-small-latest" and groups["fast"]["order"] == 1
    assert groups["capable"]["model"] == "mistral/mistral-large-latest"
    assert groups["local"]["api_base"] == "os.environ/LOCAL_MODEL_BASE_URL"
    fallbacks = {k: v for entry in config["router_settings"]["fallbacks"] for k, v in entry.items()}
    assert fallbacks == {"fast": ["capable"]}  # and never from local to a cloud group
    assert config["litellm_settings"]["callbacks"][0] == PLUGIN
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    fast_orders = [d["litellm_params"]["order"] for d in config["model_list"] if d["model_name"] == "fast"]
    assert sorted(fast_orders) == [1, 2]


def test_proxy_config_prices_the_local_group(tmp_path: Path, receiver: Any, fake_llm: Any) -> None:
    """The shipped file on the real proxy; `local` is reachable offline (the fake server)."""
    config = tmp_path / "proxy_config.yaml"
    shutil.copy(ROOT / "proxy_config.yaml", config)
    local = next(d["litellm_params"] for d in yaml.safe_load(config.read_text())["model_list"]
                 if d["model_name"] == "local")
    env = proxy_env(receiver, fake_llm, MISTRAL_API_KEY="unused-offline", LOCAL_MODEL_API_KEY="unused-offline")
    with LiteLLMProxy(config, env) as proxy:
        response = proxy.chat("local", f"prompt_tokens=1000 completion_tokens=500 {uuid.uuid4().hex}")
    assert response.status_code == 200
    expected = 1000 * local["input_cost_per_token"] + 500 * local["output_cost_per_token"]
    assert float(response.headers["x-litellm-response-cost"]) == pytest.approx(expected, rel=1e-9)
    (trace,) = wait_for_request(receiver, response.headers["x-litellm-call-id"], attempts=1)
    assert trace.request.attributes[a.COST_USD] == pytest.approx(expected, rel=1e-9)


def test_the_offline_demo_prints_a_row_per_request() -> None:
    result = subprocess.run([sys.executable, "-m", "litellm_cost_otel.devtools.demo"], capture_output=True,
                            text=True, timeout=300, check=True)
    assert "warning" not in result.stdout
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("traffic"))
    rows = [line.split("  ") for line in lines[header + 2: header + 2 + len(TRAFFIC)]]
    cells = [[cell.strip() for cell in row if cell.strip()] for row in rows]
    assert [row[0] for row in cells] == [label for label, *_ in TRAFFIC]
    by_label = {row[0]: row for row in cells}
    # traffic, asked, served, attempts, fallbacks, tokens, cost, latency, TTFT, status
    assert by_label["fallback"][1:5] == ["fast-outage", "capable", "4", "1"]
    assert by_label["retry"][3] == "2"
    assert by_label["failure"][2] == "-" and by_label["failure"][-1] == "ServiceUnavailableError"
    assert by_label["cold stream"][8] != "-" and float(by_label["cold stream"][8]) >= 800
    assert all(row[-1] == "ok" for row in cells if row[0] not in ("failure", "unknown model"))
