"""deploy/alerts.yaml, the Prometheus alerting rules, with the real tools (`make deploy-tools`;
no test here skips: without a tool it fails, naming the command that fetches it):

- Debian's promtool checks the rules file and runs the unit tests of deploy/alerts_tests/
  (series in, alerts out) for every alert; Debian's amtool checks deploy/alertmanager.yaml
  and which receiver each alert reaches;
- every alert has a severity, a summary and a description naming its group or team, and a
  runbook whose section exists in deploy/README.md with a TraceQL query on real attributes;
  every threshold is a recording rule of the one `litellm-thresholds` group; every metric the
  rules read is one the plugin or the Collector exposes;
- end to end: the real proxy and plugin -> deploy/otel-collector.yaml -> a real Prometheus
  evaluating the rules (every `for` 1 s and the latency thresholds 0.5 s, set where thresholds
  live). A slow `local` fires its latency SLOs while the healthy `fast` does not; a failing
  group, an unreachable budget store, a failing trace export and the plugin's health counters
  fire theirs; a working pipeline fires nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from test_deploy_collector import SAMPLER_CONFIG, collector, collector_env, send, send_stream
from test_deploy_files import COLLECTOR, DEPLOY

from litellm_cost_otel import attributes as a
from litellm_cost_otel import metrics
from litellm_cost_otel.devtools.deploy_tools import Prometheus, amtool, promtool
from litellm_cost_otel.devtools.fake_llm import FakeLLMServer
from litellm_cost_otel.devtools.gateway import PLUGIN, gateway_config, proxy_env, write_config
from litellm_cost_otel.devtools.proxy import LiteLLMProxy, free_port
from litellm_cost_otel.devtools.waiting import eventually

ALERTS = DEPLOY / "alerts.yaml"
ALERT_TESTS = sorted((DEPLOY / "alerts_tests").glob("*.yaml"))
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager.yaml"
DEPLOY_README = (DEPLOY / "README.md").read_text()
RULES = yaml.safe_load(ALERTS.read_text())
THRESHOLDS = "litellm-thresholds"
# The Collector's own metrics the rules read: its :8888 telemetry, whose counters have no
# `_total` suffix (0.161); each is checked live below.
COLLECTOR_TELEMETRY = {"otelcol_exporter_send_failed_spans", "otelcol_exporter_queue_size",
                       "otelcol_exporter_queue_capacity", "otelcol_receiver_refused_spans",
                       "otelcol_receiver_refused_metric_points"}


def rules() -> list[dict[str, Any]]:
    return [rule for group in RULES["groups"] for rule in group["rules"]]


def alert_rules() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def recorded_names() -> set[str]:
    """The rules' own series, and the per-group threshold tables (`name` beside `name:default`),
    which may have no series until an operator adds one."""
    names = {rule["record"] for rule in rules() if "record" in rule}
    return names | {name.removesuffix(":default") for name in names}


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
                "bool", "inf", "nan"}


def series_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (recorded ones included)."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    expr = re.sub(r"\[[^\]]*\]|\boffset\s+\w+", "", expr)  # ranges and offsets
    return set(re.findall(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", expr)) - PROMQL_WORDS


def raw_metric_names() -> set[str]:
    """What the rules read from Prometheus (not their own recorded series), as scraped:
    histograms by their _bucket series."""
    return set().union(*(series_names(rule["expr"]) for rule in rules())) - recorded_names()


# --- promtool and amtool ------------------------------------------------------------------------
def test_promtool_checks_the_rules_file() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_check_is_real_a_broken_rule_fails(tmp_path: Path) -> None:
    broken = yaml.safe_load(ALERTS.read_text())
    broken["groups"][1]["rules"][0]["expr"] = "histogram_quantile(0.95, rate(x[5m])"  # a parenthesis short
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = promtool("check", "rules", str(path))
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    assert len(ALERT_TESTS) >= 6
    result = promtool("test", "rules", *map(str, ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(ALERT_TESTS)


def test_every_alert_has_unit_tests_where_it_fires_and_where_it_stays_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in ALERT_TESTS:
        spec = yaml.safe_load(path.read_text())
        assert spec["rule_files"] == ["../alerts.yaml"], path  # the shipped file, not a copy
        for test in spec["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case["exp_alerts"] else quiet).add(case["alertname"])
                for expected in case["exp_alerts"]:  # the rendered annotations are checked too
                    assert {"summary", "description", "runbook"} <= expected["exp_annotations"].keys()
    assert firing == alert_rules().keys()
    assert quiet == alert_rules().keys()


def test_promtool_unit_tests_are_real_a_wrong_expectation_fails(tmp_path: Path) -> None:
    (tmp_path / "alerts.yaml").write_text(ALERTS.read_text())
    tests = (DEPLOY / "alerts_tests" / "latency.yaml").read_text()
    assert "litellm_model_group: batch}" in tests
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "latency.yaml").write_text(tests.replace("litellm_model_group: batch}",
                                                                   "litellm_model_group: cheap}"))
    result = promtool("test", "rules", str(tmp_path / "tests" / "latency.yaml"))
    assert result.returncode != 0 and 'litellm_model_group="batch"' in result.stdout + result.stderr


def test_amtool_checks_the_alertmanager_config_and_routes_each_alert_by_severity() -> None:
    result = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    receivers = {"warning": "webhook", "critical": "webhook-critical"}
    for name, rule in alert_rules().items():
        severity = rule["labels"]["severity"]
        routed = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", f"alertname={name}",
                        f"severity={severity}", "litellm_model_group=local")
        assert (routed.returncode, routed.stdout.strip()) == (0, receivers[severity]), (name, routed.stderr)


# --- what every alert carries -------------------------------------------------------------------
def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", markdown, re.M)}


def runbook_sections() -> dict[str, str]:
    """deploy/README.md's "Runbooks": each `### Name` entry's text."""
    runbooks = DEPLOY_README.split("\n## Runbooks\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^### (\S+)\n(.*?)(?=^### |\Z)", runbooks, re.M | re.S))


def test_every_alert_has_severity_summary_description_and_a_runbook_in_deploy_readme() -> None:
    readme_anchors = anchors(DEPLOY_README)
    for name, rule in alert_rules().items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        runbook = re.fullmatch(r"deploy/README\.md#([\w-]+)", annotations["runbook"])
        assert runbook and runbook.group(1) == name.lower() and runbook.group(1) in readme_anchors, name
        # An alert per group or team names it in both texts.
        for label in ("litellm_model_group", "litellm_team_alias"):
            if re.search(rf"\b(?:by|on) \({label}\)", rule["expr"]):
                assert f"$labels.{label}" in annotations["summary"], name
                assert f"$labels.{label}" in annotations["description"], name


def test_runbooks_have_one_entry_per_alert_each_with_traceql_on_the_plugins_attributes() -> None:
    sections = runbook_sections()
    assert sections.keys() == alert_rules().keys()
    for name, text in sections.items():
        queries = re.findall(r"```traceql\n(.*?)```", text, re.S)
        assert queries, f"{name}: no TraceQL query"
        used = {attribute for query in queries for attribute in re.findall(r"\bspan\.([\w.]+)", query)}
        assert used and used <= a.all_names(), (name, used - a.all_names())


def test_every_threshold_is_a_recording_rule_of_the_one_thresholds_group() -> None:
    groups = {group["name"]: group["rules"] for group in RULES["groups"]}
    assert next(iter(groups)) == THRESHOLDS
    thresholds = groups[THRESHOLDS]
    assert all(re.fullmatch(r"vector\([\d.]+\)", rule["expr"]) and rule["record"].startswith("litellm:")
               for rule in thresholds)
    threshold_names = {rule["record"] for rule in thresholds}
    used = set().union(*(series_names(rule["expr"]) for rule in alert_rules().values()))
    assert threshold_names <= used, threshold_names - used
    # No alert compares with a number of its own: only 0 (any event) and 60 (per minute).
    for name, rule in alert_rules().items():
        numbers = set(re.findall(r"(?<![\w.:\[])\d+(?:\.\d+)?(?![\w.\]])", re.sub(r"\[[^\]]*\]", "", rule["expr"])))
        assert numbers <= {"0", "60"}, (name, numbers)


def test_every_metric_the_rules_read_is_one_the_plugin_or_the_collector_exposes() -> None:
    """As for the dashboard (test_deploy_files.py): each name maps back to a plugin metric, a
    signal_to_metrics one or the Collector's telemetry. (That Prometheus really has each is
    checked live below.)"""
    otel_names = set(metrics.METRIC_NAMES) | {m["name"] for m in COLLECTOR["connectors"]["signal_to_metrics"]["spans"]}
    stems = {name.replace(".", "_") for name in otel_names}
    names = raw_metric_names()
    assert {"gen_ai_client_operation_duration_seconds_bucket", "litellm_traced_cost_USD_total",
            "litellm_requests_total", "litellm_cost_otel_budget_store_errors_total"} <= names
    for name in names - COLLECTOR_TELEMETRY - {"up"}:
        stem = re.sub(r"(_seconds|_USD)?(_total)?$", "", re.sub(r"_(bucket|sum|count)$", "", name))
        assert stem in stems, name
    assert COLLECTOR_TELEMETRY <= names


# --- end to end: proxy -> Collector -> Prometheus evaluating the rules --------------------------
E2E_LATENCY_SLO_S = 0.5  # every latency and time-to-first-chunk threshold, in the test's copy
SLOW_S = 1.0  # the slow local stand-in's delay (the fake server's `delay=` / `first_chunk_delay=`)


def e2e_rules(path: Path) -> Path:
    """deploy/alerts.yaml as the end-to-end test loads it: every `for` 1 s, and, where the
    thresholds live, every latency and time-to-first-chunk threshold E2E_LATENCY_SLO_S."""
    spec = yaml.safe_load(ALERTS.read_text())
    for group in spec["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
            if group["name"] == THRESHOLDS and rule["record"].startswith(
                    ("litellm:latency_slo_seconds", "litellm:time_to_first_chunk_slo_seconds")):
                rule["expr"] = f"vector({E2E_LATENCY_SLO_S})"
    path.write_text(yaml.safe_dump(spec))
    return path


def alert_key(alert: dict[str, Any]) -> tuple[str, str]:
    """(alertname, the label it is about: group, team, reason, hook, step, exporter...)."""
    labels = alert["labels"]
    about = next((labels[name] for name in ("litellm_model_group", "litellm_team_alias",
                                            "litellm_cost_otel_drop_reason", "litellm_cost_otel_hook",
                                            "litellm_cost_otel_budget_store_step", "exporter", "receiver")
                  if name in labels), "")
    return labels["alertname"], about


def active_alerts(prometheus: Prometheus) -> dict[tuple[str, str], str]:
    """Pending and firing alerts: key -> state."""
    return {alert_key(alert): alert["state"] for alert in prometheus.api("alerts")["alerts"]}


HOOK, DROP_REASON = "log_success_event", "queue_full"
EXPECTED_FIRING = {
    ("LitellmLatencySLOBreached", "local"), ("LitellmTimeToFirstChunkSLOBreached", "local"),
    ("LitellmErrorRatioHigh", "doomed"),  # every request fails, after retries and a fallback
    ("LitellmBudgetStoreErrors", "reserve"),  # the proxy's budget store is an unreachable Redis
    ("LitellmCollectorExportFailing", "otlp_grpc/tempo"),  # its trace backend is unreachable
    ("LitellmCostOtelHookErrors", HOOK), ("LitellmCostOtelSpansDropped", DROP_REASON),
}


@pytest.fixture(scope="module")
def alerting(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLMServer) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("alerting")
    # Nobody listens at the trace endpoint; without retries every failed send counts at once
    # (with them, only after 5 minutes of retrying).
    env = collector_env(f"127.0.0.1:{free_port()}", SAMPLE_PERCENT="100")
    collector_config = yaml.safe_load(SAMPLER_CONFIG.read_text())
    collector_config["exporters"]["otlp_grpc/tempo"]["retry_on_failure"] = {"enabled": False}
    sampler = collector(write_config(workdir / "collector.yaml", collector_config), env, workdir / "collector.log")
    prometheus = Prometheus([env["PROMETHEUS_ENDPOINT"], f"127.0.0.1:{env['TELEMETRY_PORT']}"], workdir, free_port(),
                            rule_files=[e2e_rules(workdir / "alerts.yaml")])
    config = gateway_config([PLUGIN])
    config["callback_settings"] = {"litellm_cost_otel": {
        "budgets": [{"name": "all-daily", "scope": "global", "limit_usd": 1000, "window": "day"}],
        "budget_store": "redis", "budget_redis_url": f"redis://127.0.0.1:{free_port()}/0"}}  # nobody listens
    proxy = LiteLLMProxy(write_config(workdir / "config.yaml", config),
                         proxy_env(f"http://{env['OTLP_GRPC_ENDPOINT']}", fake_llm))
    recorder = MeterProvider([PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"http://{env['OTLP_GRPC_ENDPOINT']}", insecure=True), export_interval_millis=500)],
        resource=Resource.create({"service.name": "plugin-health"}))
    try:
        sampler.start()
        prometheus.start()
        with proxy, ThreadPoolExecutor(max_workers=12) as pool:
            # Every series the burst below moves exists first, so rate() sees all of the burst.
            # (Requests that wait, on the slow stand-in or on litellm's retry back-off, in parallel.)
            warm_up = [pool.submit(call, proxy, group, text) for call, group, text in (
                (send, "fast", "Warm up."), (send_stream, "fast", "Warm up."), (send, "local", "Warm up."),
                (send_stream, "local", "Warm up."), (send, "local", "fail=1 warm up, retried"),
                (send, "doomed", "Warm up, fails."))]
            assert [future.result().ok for future in warm_up] == [True] * 5 + [False]
            seen = eventually(lambda: prometheus.query("sum(litellm_requests_total)"),
                              lambda found: bool(found) and float(found[0]["value"][1]) == len(warm_up), 30)
            assert seen and float(seen[0]["value"][1]) == len(warm_up), seen
            # The burst: a slow local stand-in and a failing group in parallel; a fast group.
            slow = [pool.submit(send, proxy, "local", f"delay={SLOW_S} slow {i}") for i in range(4)]
            slow += [pool.submit(send_stream, proxy, "local", f"first_chunk_delay={SLOW_S} slow stream {i}")
                     for i in range(4)]
            failed = [pool.submit(send, proxy, "doomed", f"Fails {i}.") for i in range(3)]
            fast = [send(proxy, "fast", f"Fast {i}.") for i in range(10)]
            fast += [send_stream(proxy, "fast", f"Fast stream {i}.") for i in range(10)]
            assert all(s.ok for s in fast + [future.result() for future in slow])
            assert not any(future.result().ok for future in failed)
            # What the plugin records when a hook fails or spans are dropped (a healthy proxy
            # does neither on purpose): its own recorder, through the SDK, into the same Collector.
            health = metrics.MetricsRecorder(recorder.get_meter("litellm_cost_otel"), 10, False)
            health.hook_error(HOOK)
            health.spans_dropped(2, DROP_REASON)
            recorder.force_flush()
            firing = eventually(lambda: active_alerts(prometheus),
                                lambda found: all(found.get(key) == "firing" for key in EXPECTED_FIRING), 40,
                                interval=0.5)
            yield {"prometheus": prometheus, "firing": firing}
    finally:
        recorder.shutdown()
        prometheus.stop()
        sampler.stop()


def test_the_slow_local_group_breaks_its_latency_slos_and_the_healthy_fast_group_does_not(
        alerting: dict[str, Any]) -> None:
    prometheus: Prometheus = alerting["prometheus"]
    active = active_alerts(prometheus)
    for alert in ("LitellmLatencySLOBreached", "LitellmTimeToFirstChunkSLOBreached"):
        assert active.get((alert, "local")) == "firing", active
        assert (alert, "fast") not in active, active  # not even pending
    # Because of the groups' real latencies against the one threshold, not by construction:
    for recorded in ("litellm_model_group:gen_ai_client_operation_duration_seconds:p95_5m",
                     "litellm_model_group:gen_ai_client_operation_time_to_first_chunk_seconds:p95_5m"):
        p95 = {item["metric"]["litellm_model_group"]: float(item["value"][1]) for item in prometheus.query(recorded)}
        assert p95["fast"] < E2E_LATENCY_SLO_S < SLOW_S <= p95["local"], (recorded, p95)
    (alert,) = [item for item in prometheus.api("alerts")["alerts"]
                if alert_key(item) == ("LitellmLatencySLOBreached", "local")]
    assert alert["annotations"]["runbook"] == "deploy/README.md#litellmlatencyslobreached"
    assert "model group local" in alert["annotations"]["description"]


def test_the_failing_group_fires_the_error_ratio_and_the_healthy_ones_do_not(alerting: dict[str, Any]) -> None:
    active = active_alerts(alerting["prometheus"])
    assert active.get(("LitellmErrorRatioHigh", "doomed")) == "firing"
    assert {key for key in active if key[0] == "LitellmErrorRatioHigh"} == {("LitellmErrorRatioHigh", "doomed")}


def test_store_export_and_plugin_health_failures_fire_and_a_working_pipeline_does_not(
        alerting: dict[str, Any]) -> None:
    active = active_alerts(alerting["prometheus"])
    assert {key for key in EXPECTED_FIRING if active.get(key) != "firing"} == set(), sorted(active.items())
    # The proxy's metrics arrive, the Collector is scraped and takes everything.
    for quiet in ("LitellmTelemetryMissing", "LitellmCollectorDown", "LitellmCollectorRefusingData",
                  "LitellmGroupSpendHigh", "LitellmTeamSpendHigh", "LitellmSpendJump"):
        assert not [key for key in active if key[0] == quiet], (quiet, active)


def test_every_rule_evaluates_without_error_on_the_real_series(alerting: dict[str, Any]) -> None:
    prometheus: Prometheus = alerting["prometheus"]
    evaluated = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
    assert len(evaluated) == len(rules())
    assert [(rule["name"], rule["health"], rule.get("lastError")) for rule in evaluated
            if rule["health"] != "ok"] == []


def test_every_metric_the_rules_read_is_in_prometheus(alerting: dict[str, Any]) -> None:
    exposed = set(alerting["prometheus"].api("label/__name__/values"))
    missing = raw_metric_names() - exposed
    assert not missing, f"the rules read {missing}; Prometheus has {sorted(exposed)}"
