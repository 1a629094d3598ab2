"""deploy/'s Collector configs on a real Collector, built from deploy/collector/builder.yaml
with the Collector Builder (`make deploy-tools`; cached per machine). No test here skips: without
the build they fail, naming the command that builds it.

- every Collector config in deploy/ passes `otelcol validate` (a broken one does not);
- proxy + plugin -> deploy/otel-collector.yaml -> a downstream OTLP receiver standing in for
  Tempo, plus a scrape of its Prometheus endpoint: spend sums equal the proxy's own
  `x-litellm-response-cost` headers, errors, expensive and slow traces are all kept, cheap ones
  are sampled;
- a real Prometheus scraping that Collector: every query of the Grafana dashboard returns
  data, and the spend panel's value equals the proxy's cost headers;
- deploy/k8s/otel-loadbalancer.yaml in front of two sampler Collectors: each trace arrives
  whole at exactly one of them.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from test_deploy_files import DASHBOARD, EVENT_ONLY_METRICS, dashboard_metric_names

from litellm_cost_otel import attributes as a
from litellm_cost_otel.devtools.deploy_tools import Collector, Prometheus, validate
from litellm_cost_otel.devtools.fake_llm import FakeLLMServer
from litellm_cost_otel.devtools.gateway import PLUGIN, gateway_config, proxy_env, write_config
from litellm_cost_otel.devtools.otlp_receiver import OtlpReceiver
from litellm_cost_otel.devtools.proxy import LiteLLMProxy, free_port
from litellm_cost_otel.devtools.traces import RequestTrace, request_traces
from litellm_cost_otel.devtools.waiting import eventually

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SAMPLER_CONFIG = DEPLOY / "otel-collector.yaml"
LOADBALANCER_CONFIG = DEPLOY / "k8s" / "otel-loadbalancer.yaml"
COLLECTOR_CONFIGS = [SAMPLER_CONFIG, LOADBALANCER_CONFIG]

COST_KEEP_MICRO_USD = 1000  # $0.001: far above a short request, below a 5000-token local one
SLOW_TRACE_MS = 700
SAMPLE_PERCENT = 50


@pytest.mark.parametrize("config", COLLECTOR_CONFIGS, ids=lambda p: p.name)
def test_collector_config_validates_on_the_real_collector(config: Path) -> None:
    result = validate(config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_rejects_a_broken_config(tmp_path: Path) -> None:
    """The validation above is real: a misspelt setting is refused. (It does not check
    policy types: the end-to-end tests below start the sampler config for that.)"""
    broken = yaml.safe_load(SAMPLER_CONFIG.read_text())
    broken["processors"]["tail_sampling"]["decision_wiat"] = broken["processors"]["tail_sampling"].pop("decision_wait")
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = validate(path)
    assert result.returncode != 0
    assert "decision_wiat" in result.stdout + result.stderr


def collector_env(traces_endpoint: str, **extra: str) -> dict[str, str]:
    """deploy/'s `${env:...}` settings, mapped to free ports on 127.0.0.1."""
    return {
        "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TELEMETRY_HOST": "127.0.0.1",
        "TELEMETRY_PORT": str(free_port()),
        "PROMETHEUS_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TRACES_OTLP_ENDPOINT": traces_endpoint,
        "TAIL_DECISION_WAIT": "2s",
        "COST_KEEP_MICRO_USD": str(COST_KEEP_MICRO_USD),
        "SLOW_TRACE_MS": str(SLOW_TRACE_MS),
        "SAMPLE_PERCENT": str(SAMPLE_PERCENT),
        **extra,
    }


def collector(config: Path, env: dict[str, str], log: Path) -> Collector:
    return Collector(config, env, int(env["HEALTH_CHECK_ENDPOINT"].rsplit(":", 1)[1]), log)


def scrape(prometheus_endpoint: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The Collector's Prometheus endpoint, as sample name -> [(labels, value)]."""
    with urllib.request.urlopen(f"http://{prometheus_endpoint}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(value for found, value in samples.get(name, [])
               if all(found.get(key) == want for key, want in labels.items()))


@dataclass
class Sent:
    call_id: str
    group: str
    cost: float
    ok: bool
    usage: dict[str, int] = field(default_factory=dict)


def send(proxy: LiteLLMProxy, group: str, content: str) -> Sent:
    response = proxy.chat(group, content)
    ok = response.status_code == 200
    return Sent(response.headers["x-litellm-call-id"], group,
                float(response.headers.get("x-litellm-response-cost") or 0.0), ok,
                response.json().get("usage", {}) if ok else {})


def send_stream(proxy: LiteLLMProxy, group: str, content: str) -> Sent:
    """A stream's cost is not in a header: litellm puts it in the final usage chunk."""
    response = proxy.chat(group, content, stream=True, stream_options={"include_usage": True})
    events = [json.loads(line[len("data: "):]) for line in response.text.splitlines()
              if line.startswith("data: {")]
    usage = next(event["usage"] for event in reversed(events) if event.get("usage"))
    return Sent(response.headers["x-litellm-call-id"], group, float(usage["cost"]),
                response.status_code == 200, usage)


def scraped_at(prometheus: Prometheus, requests: int, timeout: float = 30.0) -> float:
    """The time of a Prometheus scrape that saw `requests` requests summed by the Collector."""
    found = eventually(lambda: prometheus.query("sum(litellm_traced_requests_total)"),
                       lambda found: bool(found) and float(found[0]["value"][1]) == requests, timeout)
    assert found and float(found[0]["value"][1]) == requests, f"Prometheus never saw {requests} requests: {found}"
    return float(prometheus.query("max(timestamp(litellm_traced_requests_total))")[0]["value"][1])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLMServer) -> Iterator[dict[str, Any]]:
    """proxy + plugin -> deploy/otel-collector.yaml -> a Tempo stand-in, and a Prometheus
    scraping the Collector; the traffic sent."""
    workdir = tmp_path_factory.mktemp("deploy-pipeline")
    tempo = OtlpReceiver().start()
    env = collector_env(tempo.endpoint)
    sampler = collector(SAMPLER_CONFIG, env, workdir / "collector.log")
    prometheus = Prometheus([env["PROMETHEUS_ENDPOINT"]], workdir, free_port())
    config = write_config(workdir / "config.yaml", gateway_config([PLUGIN]))
    proxy = LiteLLMProxy(config, proxy_env(f"http://{env['OTLP_GRPC_ENDPOINT']}", fake_llm))
    try:
        sampler.start()
        prometheus.start()
        with proxy:
            sent = {
                "cheap": [send(proxy, "fast", f"Say hello, number {i}.") for i in range(60)],
                # The local group's prices are set in the config; the fake server reports the usage.
                "expensive": [send(proxy, "local", f"prompt_tokens=5000 big one {i}") for i in range(4)],
                "failed": [send(proxy, "doomed", "This fails everywhere.") for _ in range(2)],
                "fell_back": [send(proxy, "fast-outage", "The first group is down.") for _ in range(2)],
                "slow": [send(proxy, "local", f"delay=1.0 slow one {i}") for i in range(2)],
                "streamed": [send_stream(proxy, "fast", f"Stream {i}.") for i in range(2)]
                + [send_stream(proxy, "local", "first_chunk_delay=0.05 Stream locally.")],
            }
            # Every series the dashboard reads exists now; what follows is what it must show.
            window_start = scraped_at(prometheus, sum(len(kind) for kind in sent.values()))
            sent["dashboard"] = [
                *(send(proxy, "fast", f"Dashboard {i}.") for i in range(5)),
                *(send_stream(proxy, "local", f"first_chunk_delay=0.05 prompt_tokens={30 + i}") for i in range(3)),
                send(proxy, "local", "fail=1 retried"), send(proxy, "fast-outage", "Falls back."),
                send(proxy, "doomed", "Fails."),
            ]
        # The proxy has flushed on shutdown; tail sampling decides after TAIL_DECISION_WAIT.
        window_end = scraped_at(prometheus, sum(len(kind) for kind in sent.values()))
        yield {"sent": sent, "tempo": tempo, "prometheus": env["PROMETHEUS_ENDPOINT"], "server": prometheus,
               "window": (window_start, window_end)}
    finally:
        prometheus.stop()
        sampler.stop()
        tempo.stop()


def kept_traces(receivers: Sequence[OtlpReceiver], wanted: set[str], settle_s: float,
                timeout: float = 30.0) -> dict[str, RequestTrace]:
    """The request traces that reached the receivers, by call id: read once all `wanted` call
    ids are among them (or at the timeout) and `settle_s` more seconds have passed, so that
    stragglers land before anything is counted."""
    def received() -> dict[str, RequestTrace]:
        return {t.call_id: t for r in receivers for t in request_traces(r.snapshot())}

    eventually(received, lambda found: wanted <= found.keys(), timeout, interval=0.5)
    time.sleep(settle_s)
    return received()


def test_traffic_is_what_the_sampling_test_needs(pipeline: dict[str, Any]) -> None:
    """Preconditions, from the proxy's own answers: which side of each threshold requests fall."""
    sent = pipeline["sent"]
    assert all(s.ok and 0 < s.cost * 1e6 < COST_KEEP_MICRO_USD / 10 for s in sent["cheap"])
    assert all(s.ok and s.cost * 1e6 > COST_KEEP_MICRO_USD for s in sent["expensive"])
    assert all(not s.ok for s in sent["failed"])
    assert all(s.ok for s in sent["fell_back"] + sent["slow"])


def test_tail_sampling_keeps_errors_expensive_and_slow_and_samples_the_rest(pipeline: dict[str, Any]) -> None:
    sent = pipeline["sent"]
    must_keep = {s.call_id for kind in ("expensive", "failed", "fell_back", "slow") for s in sent[kind]}
    kept = kept_traces([pipeline["tempo"]], must_keep, settle_s=3)
    assert must_keep <= kept.keys(), f"dropped: {must_keep - kept.keys()}"
    # Kept traces arrive whole: the request span and every attempt it counts.
    for call_id in must_keep:
        trace = kept[call_id]
        assert len(trace.attempts) == trace.request.attributes[a.ATTEMPTS] >= 1
    cheap = {s.call_id for s in sent["cheap"]}
    kept_cheap = cheap & kept.keys()
    # 60 traces at 50%: all or none kept has probability 2 * 0.5**60.
    assert 0 < len(kept_cheap) < len(cheap), f"{len(kept_cheap)} of {len(cheap)} cheap traces kept"


def test_spend_sums_before_sampling_equal_the_proxy_cost_headers(pipeline: dict[str, Any]) -> None:
    sent = [s for kind in pipeline["sent"].values() for s in kind]
    samples = eventually(lambda: scrape(pipeline["prometheus"]),
                         lambda found: total(found, "litellm_traced_requests_total") >= len(sent), 30, interval=0.5)
    assert total(samples, "litellm_traced_requests_total") == len(sent)
    # Every request, sampled or not, is summed: the sum equals litellm's own cost headers...
    assert total(samples, "litellm_traced_cost_USD_total") == pytest.approx(sum(s.cost for s in sent), rel=1e-9)
    for group in {s.group for s in sent}:
        assert total(samples, "litellm_traced_cost_USD_total", litellm_model_group=group) == pytest.approx(
            sum(s.cost for s in sent if s.group == group), rel=1e-9, abs=1e-12), group
    # ...tokens equal the usage the proxy returned, and failures are counted by error type.
    assert total(samples, "litellm_traced_input_tokens_total") == sum(s.usage["prompt_tokens"] for s in sent if s.ok)
    assert total(samples, "litellm_traced_output_tokens_total") == sum(
        s.usage["completion_tokens"] for s in sent if s.ok)
    failures = sum(1 for s in sent if not s.ok)
    assert len(sent) - total(samples, "litellm_traced_requests_total", error_type="none") == failures
    # The plugin's own cost counter, over OTLP through the same Collector, agrees.
    assert total(samples, "litellm_request_cost_USD_total") == pytest.approx(sum(s.cost for s in sent), rel=1e-9)


def test_the_dashboard_queries_metrics_the_collector_really_exposes(pipeline: dict[str, Any]) -> None:
    samples = scrape(pipeline["prometheus"])
    exposed = {re.sub(r"_(bucket|sum|count)$", "", name) for name in samples}
    missing = dashboard_metric_names() - EVENT_ONLY_METRICS - exposed
    assert not missing, f"dashboard reads {missing}; the Collector exposes {sorted(exposed)}"


def dashboard_query(expr: str, range_s: float) -> str:
    """A panel's PromQL as Grafana sends it: every group, and both Grafana ranges set to the
    window (in milliseconds, so that its ends are two scrapes)."""
    window = f"{round(range_s * 1000)}ms"
    return expr.replace("$model_group", ".*").replace("$__rate_interval", window).replace("$__range", window)


def test_every_dashboard_query_returns_data_on_a_real_prometheus(pipeline: dict[str, Any]) -> None:
    """Run on a real Prometheus over the Collector's metrics, each panel's PromQL answers, and
    the spend panel shows exactly what the proxy billed in the window: its range ends on two
    scrapes, so Prometheus's extrapolation adds nothing."""
    prometheus: Prometheus = pipeline["server"]
    start, end = pipeline["window"]
    panels = {panel["title"]: [t["expr"] for t in panel.get("targets", []) if t["datasource"]["type"] == "prometheus"]
              for panel in DASHBOARD["panels"]}
    for title, queries in panels.items():
        for expr in queries:
            result = prometheus.query(dashboard_query(expr, end - start), at=end)
            values = [float(item["value"][1]) for item in result]
            assert values and any(value == value for value in values), (title, expr, result)  # not all NaN
    (spend,) = prometheus.query(dashboard_query(panels["Total spend in range"][0], end - start), at=end)
    assert float(spend["value"][1]) == pytest.approx(sum(s.cost for s in pipeline["sent"]["dashboard"]), rel=1e-9)
    groups = prometheus.api("label/litellm_model_group/values", **{"match[]": "litellm_traced_cost_USD_total"})
    assert {s.group for kind in pipeline["sent"].values() for s in kind} <= set(groups)  # the group variable


def test_load_balancing_tier_keeps_each_trace_whole_on_one_sampler(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """deploy/k8s/otel-loadbalancer.yaml with its k8s resolver swapped for a static one on
    127.0.0.1, in front of two sampler Collectors (deploy/otel-collector.yaml) that keep
    everything; each forwards to its own receiver, so we see where every span went."""
    samplers, receivers = [], []
    try:
        for index in range(2):
            receiver = OtlpReceiver().start()
            receivers.append(receiver)
            env = collector_env(receiver.endpoint, SAMPLE_PERCENT="100", TAIL_DECISION_WAIT="1s")
            samplers.append((collector(SAMPLER_CONFIG, env, tmp_path / f"sampler{index}.log").start(), env))
        balancer_config = yaml.safe_load(LOADBALANCER_CONFIG.read_text())
        static = {"static": {"hostnames": [env["OTLP_GRPC_ENDPOINT"] for _, env in samplers]}}
        for name in ("load_balancing/traces", "load_balancing/metrics"):
            balancer_config["exporters"][name]["resolver"] = static
        balancer_path = tmp_path / "balancer.yaml"
        balancer_path.write_text(yaml.safe_dump(balancer_config))
        balancer_env = collector_env("unused:4317")
        with collector(balancer_path, balancer_env, tmp_path / "balancer.log"):
            config = write_config(tmp_path / "config.yaml", gateway_config([PLUGIN]))
            endpoint = f"http://{balancer_env['OTLP_GRPC_ENDPOINT']}"
            with LiteLLMProxy(config, proxy_env(endpoint, fake_llm)) as proxy:
                # Every fifth request fails once on the local server and is retried: 3 spans.
                sent = [send(proxy, "local", f"fail=1 request {i}") if i % 5 == 0 else
                        send(proxy, ("fast", "capable", "local")[i % 3], f"Request {i}.") for i in range(40)]
            wanted = {s.call_id for s in sent}
            received = kept_traces(receivers, wanted, settle_s=2)  # a stray span would be in by then
    finally:
        for sampler, _ in samplers:
            sampler.stop()
        for receiver in receivers:
            receiver.stop()
    spans_by_trace: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for index, receiver in enumerate(receivers):
        for span in receiver.snapshot():
            spans_by_trace[span.trace_id][index] += 1
    traces_per_sampler = [sum(1 for where in spans_by_trace.values() if index in where) for index in range(2)]
    assert all(count > 0 for count in traces_per_sampler), traces_per_sampler  # both share the load
    split = {trace: dict(where) for trace, where in spans_by_trace.items() if len(where) > 1}
    assert not split, f"traces split across samplers: {split}"
    assert wanted <= received.keys()
    for s in sent:
        trace = received[s.call_id]
        assert len(trace.attempts) == trace.request.attributes[a.ATTEMPTS]


# --- attribute names in deploy/ exist in the plugin's attribute module -----------------------
OTTL_ATTRIBUTE = re.compile(r'attributes\["([^"]+)"\]')


def collector_attribute_names(config: dict[str, Any]) -> set[str]:
    """Span attribute names a Collector config reads: OTTL paths and `key:` settings."""
    names = set(OTTL_ATTRIBUTE.findall(yaml.safe_dump(config)))
    connector = config.get("connectors", {}).get("signal_to_metrics", {})
    for metric in connector.get("spans", []):
        names |= {attribute["key"] for attribute in metric.get("attributes", [])}
    for policy in config.get("processors", {}).get("tail_sampling", {}).get("policies", []):
        if policy["type"] == "numeric_attribute":
            names.add(policy["numeric_attribute"]["key"])
    return names


def test_collector_configs_read_only_attributes_the_plugin_emits() -> None:
    read = collector_attribute_names(yaml.safe_load(SAMPLER_CONFIG.read_text()))
    assert {a.COST_USD, a.COST_MICRO_USD, a.MODEL_GROUP, a.TEAM_ALIAS} <= read  # the parser sees them
    assert read <= a.all_names(), read - a.all_names()


def test_a_misspelt_attribute_in_a_collector_config_is_caught() -> None:
    config = yaml.safe_load(SAMPLER_CONFIG.read_text())
    config["processors"]["tail_sampling"]["policies"][1]["numeric_attribute"]["key"] = "llm.cost_micro_usd"
    assert "llm.cost_micro_usd" in collector_attribute_names(config) - a.all_names()
