"""deploy/'s files agree with each other and with the plugin: compose, the Dockerfile, the
Grafana dashboard and the Kubernetes manifests (rendered by the real kustomize). The Collector
configs themselves run on a real Collector in test_deploy_collector.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from litellm_cost_otel import attributes as a
from litellm_cost_otel import metrics
from litellm_cost_otel.devtools.deploy_tools import kustomize_build, promtool, validate

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
COLLECTOR = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
DASHBOARD = json.loads((DEPLOY / "grafana" / "dashboards" / "litellm-cost.json").read_text())
PINNED = re.compile(r"^[\w.\-/]+(:[\w.\-]+)$")  # registry/name:tag


def pinned(image: str) -> bool:
    match = PINNED.match(image)
    return bool(match) and match.group(1) not in (":latest", ":main", ":stable")


def env_default(value: str) -> str:
    """`${env:NAME:-default}` -> default (a Collector config's value when NAME is unset)."""
    match = re.fullmatch(r"\$\{env:\w+:-(.*)\}", value)
    return match.group(1) if match else value


# --- docker compose -------------------------------------------------------------------------
def test_compose_images_are_pinned_and_mounted_files_exist() -> None:
    services = COMPOSE["services"]
    assert {"litellm", "otel-collector", "tempo", "prometheus", "grafana"} <= services.keys()
    for name, service in services.items():
        assert "build" in service or pinned(service["image"]), f"{name}: {service.get('image')}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    assert services["otel-collector"]["image"].endswith(":0.161.0")  # = deploy/collector/builder.yaml
    builder = yaml.safe_load((DEPLOY / "collector" / "builder.yaml").read_text())
    assert builder["dist"]["version"] == "0.161.0"


def test_compose_wires_proxy_collector_tempo_prometheus_grafana_together() -> None:
    services = COMPOSE["services"]
    proxy_env = services["litellm"]["environment"]
    grpc_port = env_default(COLLECTOR["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]).rsplit(":", 1)[1]
    assert proxy_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://otel-collector:{grpc_port}"
    assert proxy_env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    # The budget guard's shared store: the compose Redis, by its service name and port.
    assert proxy_env["LITELLM_COST_OTEL_BUDGET_STORE"] == "redis"
    assert proxy_env["LITELLM_COST_OTEL_BUDGET_REDIS_URL"] == "redis://redis:6379/0"
    assert "redis" in services["litellm"]["depends_on"] and "REDIS_HOST" not in proxy_env
    # The Collector exports traces to Tempo's OTLP receiver...
    tempo = yaml.safe_load((DEPLOY / "tempo.yaml").read_text())
    tempo_port = tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rsplit(":", 1)[1]
    assert env_default(COLLECTOR["exporters"]["otlp_grpc/tempo"]["endpoint"]) == f"tempo:{tempo_port}"
    # ...Prometheus scrapes the Collector's prometheus exporter...
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yaml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    exporter_port = env_default(COLLECTOR["exporters"]["prometheus"]["endpoint"]).rsplit(":", 1)[1]
    assert f"otel-collector:{exporter_port}" in targets
    # ...and Grafana's data sources are those two services, under the uids the dashboard uses.
    sources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yaml").read_text())
    urls = {source["uid"]: source["url"] for source in sources["datasources"]}
    assert urls == {"prometheus": "http://prometheus:9090", "tempo": f"http://tempo:{tempo['server']['http_listen_port']}"}
    used = {target["datasource"]["uid"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])}
    assert used <= urls.keys()


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's bind mounts: file in deploy/ -> path in the container."""
    return {source: target for source, target, *_ in (volume.split(":") for volume in service.get("volumes", []))}


def test_compose_prometheus_loads_the_alert_rules_scrapes_the_collector_and_alerts_alertmanager(
        tmp_path: Path) -> None:
    services = COMPOSE["services"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yaml").read_text())
    # deploy/alerts.yaml is mounted where prometheus.yaml's rule_files looks.
    assert prometheus["rule_files"] == [mounts(services["prometheus"])["./alerts.yaml"]]
    # Alerts go to the compose Alertmanager, which runs deploy/alertmanager.yaml.
    alertmanager = services["alertmanager"]
    assert alertmanager["image"].startswith("prom/alertmanager:v")
    config_flag = next(arg for arg in alertmanager["command"] if arg.startswith("--config.file="))
    assert config_flag == f"--config.file={mounts(alertmanager)['./alertmanager.yaml']}"
    port = alertmanager["ports"][0].rsplit(":", 1)[1]
    targets = [t for manager in prometheus["alerting"]["alertmanagers"] for c in manager["static_configs"]
               for t in c["targets"]]
    assert targets == [f"alertmanager:{port}"] and "alertmanager" in services["prometheus"]["depends_on"]
    # The Collector alerts read its own telemetry: scraped on the port otel-collector.yaml serves it.
    reader = COLLECTOR["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    jobs = {job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
            for job in prometheus["scrape_configs"]}
    assert jobs["otel-collector-telemetry"] == [f"otel-collector:{env_default(str(reader['port']))}"]
    assert all(name.startswith("otel-collector") for name in jobs)  # LitellmCollectorDown's up{job=~...}
    # The real promtool accepts the whole file (the rules at their path in the repository).
    prometheus["rule_files"] = [str(DEPLOY / "alerts.yaml")]
    config = tmp_path / "prometheus.yaml"
    config.write_text(yaml.safe_dump(prometheus))
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_starts_from_a_tested_litellm_and_installs_this_package() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    image = re.search(r"^ARG LITELLM_IMAGE=(\S+)$", dockerfile, re.M)
    assert image and pinned(image.group(1))
    litellm_pin = re.search(r"^litellm==(\S+)$", (REPO / "constraints.txt").read_text(), re.M)
    assert litellm_pin and image.group(1).endswith(f":v{litellm_pin.group(1)}")  # the default: the pin
    # The plugin's pins leave litellm out: pip must keep the image's own (the build checks it).
    assert "'^(opentelemetry-" in dockerfile and "^(litellm" not in dockerfile
    assert "python -m ensurepip" in dockerfile  # uv-built images ship no pip
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (REPO / path).exists(), path
    assert "proxy_config.yaml" in dockerfile


def test_the_proxy_config_deploy_ships_passes_the_cost_check() -> None:
    result = subprocess.run([sys.executable, "-m", "litellm_cost_otel.cli", "check", "--format", "json",
                             str(REPO / "proxy_config.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [f for f in json.loads(result.stdout)["findings"] if f["severity"] == "error"]


# --- the Grafana dashboard --------------------------------------------------------------------
def prometheus_queries() -> list[str]:
    queries = [target["expr"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])
               if target["datasource"]["type"] == "prometheus"]
    queries += [variable["definition"] for variable in DASHBOARD["templating"]["list"]]
    return queries


def traceql_queries() -> list[str]:
    return [target["query"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])
            if target["datasource"]["type"] == "tempo"]


def labels_in(query: str) -> set[str]:
    labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", query))
    for grouping in re.findall(r"\bby\s*\(([^)]*)\)", query):
        labels |= {label.strip() for label in grouping.split(",") if label.strip()}
    labels |= set(re.findall(r"label_values\(\s*\w+\s*,\s*(\w+)\s*\)", query))
    return labels


def dashboard_metric_names() -> set[str]:
    """Prometheus metric names the dashboard reads, without _bucket/_sum/_count."""
    names: set[str] = set()
    for query in prometheus_queries():
        found = set(re.findall(r"\b((?:litellm|gen_ai)_\w+)\b", query)) - labels_in(query)
        names |= {re.sub(r"_bucket$", "", name) for name in found}
    return names


# Series that exist only once their event happened (no span was ever dropped, no hook failed).
EVENT_ONLY_METRICS = {f"{name.replace('.', '_')}_total" for name in (metrics.SPANS_DROPPED, metrics.HOOK_ERRORS)}


def test_dashboard_labels_and_traceql_attributes_are_the_plugins_attribute_names() -> None:
    prometheus_labels = {name.replace(".", "_") for name in a.all_names()} | {"le", "job", "instance"}
    used_labels = set().union(*(labels_in(query) for query in prometheus_queries()))
    assert {"litellm_model_group", "litellm_team_alias", "le"} <= used_labels
    assert used_labels <= prometheus_labels, used_labels - prometheus_labels
    used_attributes = {name for query in traceql_queries()
                       for name in re.findall(r"\bspan\.([\w.]+)", query)}
    assert {a.COST_MICRO_USD, a.COST_USD} <= used_attributes
    assert used_attributes <= a.all_names(), used_attributes - a.all_names()


def test_dashboard_metric_names_come_from_the_plugin_or_the_collector() -> None:
    """Each Prometheus name maps back to a plugin metric or a signal_to_metrics one. (That the
    Collector really exposes them under these names is checked on a live scrape.)"""
    otel_names = set(metrics.METRIC_NAMES) | {m["name"] for m in COLLECTOR["connectors"]["signal_to_metrics"]["spans"]}
    stems = {name.replace(".", "_") for name in otel_names}
    for name in dashboard_metric_names():
        stem = re.sub(r"(_seconds|_USD)?(_total)?$", "", name)
        assert stem in stems, name
    assert EVENT_ONLY_METRICS <= dashboard_metric_names()


# --- Kubernetes -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    """deploy/ rendered as `kubectl apply -k deploy/` would apply it."""
    return [doc for doc in yaml.safe_load_all(kustomize_build(DEPLOY)) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for d in of_kind(docs, "Deployment").values() for c in d["spec"]["template"]["spec"]["containers"]]


def test_k8s_images_are_pinned_and_everything_lives_in_one_namespace(k8s: list[dict[str, Any]]) -> None:
    assert {"litellm", "otel-loadbalancer", "otel-sampler", "budget-redis"} == of_kind(k8s, "Deployment").keys()
    for container in containers(k8s):
        assert pinned(container["image"]), container["image"]
    assert {doc["metadata"].get("namespace") for doc in k8s if doc["kind"] != "Namespace"} == {"litellm"}


def test_k8s_collector_tiers_run_deploys_collector_configs(k8s: list[dict[str, Any]], tmp_path: Path) -> None:
    config_maps = of_kind(k8s, "ConfigMap")
    deployments = of_kind(k8s, "Deployment")
    expected = {"otel-loadbalancer": DEPLOY / "k8s" / "otel-loadbalancer.yaml",
                "otel-sampler": DEPLOY / "otel-collector.yaml"}
    for name, source in expected.items():
        volume = deployments[name]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
        config = config_maps[volume]["data"]["config.yaml"]  # kustomize's hashed name resolves
        assert config == source.read_text()
        path = tmp_path / f"{name}.yaml"
        path.write_text(config)
        result = validate(path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_k8s_ships_the_alert_rules_as_a_configmap_of_the_plain_rules_file(k8s: list[dict[str, Any]]) -> None:
    rules = of_kind(k8s, "ConfigMap")["litellm-alert-rules"]  # no hash suffix: referenced from outside
    assert rules["data"] == {"alerts.yaml": (DEPLOY / "alerts.yaml").read_text()}
    assert rules["metadata"]["namespace"] == "litellm"


def test_k8s_load_balancer_resolves_the_headless_sampler_service_with_rbac(k8s: list[dict[str, Any]]) -> None:
    balancer = yaml.safe_load((DEPLOY / "k8s" / "otel-loadbalancer.yaml").read_text())
    traces = balancer["exporters"]["load_balancing/traces"]
    assert traces["routing_key"] == "traceID"
    service_ref = env_default(traces["resolver"]["k8s"]["service"])
    deployment = of_kind(k8s, "Deployment")["otel-loadbalancer"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    service_name, namespace = (env.get("SAMPLER_SERVICE") or service_ref).split(".")
    sampler_service = of_kind(k8s, "Service")[service_name]
    assert sampler_service["metadata"]["namespace"] == namespace
    assert sampler_service["spec"]["clusterIP"] == "None"  # every pod's address, not one VIP
    assert traces["resolver"]["k8s"]["ports"] == [p["port"] for p in sampler_service["spec"]["ports"]]
    # The resolver's service account may get, list and watch EndpointSlices.
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    binding = next(b for b in of_kind(k8s, "RoleBinding").values()
                   if {"kind": "ServiceAccount", "name": account, "namespace": "litellm"} in b["subjects"])
    rules = of_kind(k8s, "Role")[binding["roleRef"]["name"]]["rules"]
    assert any("discovery.k8s.io" in r["apiGroups"] and "endpointslices" in r["resources"]
               and {"get", "list", "watch"} <= set(r["verbs"]) for r in rules)


def test_k8s_proxies_send_otlp_to_the_balancer_with_downward_api_identity(k8s: list[dict[str, Any]]) -> None:
    proxy = of_kind(k8s, "Deployment")["litellm"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in proxy["env"]}
    balancer_port = of_kind(k8s, "Service")["otel-loadbalancer"]["spec"]["ports"][0]["port"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == f"http://otel-loadbalancer:{balancer_port}"
    resource = env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    assert "service.instance.id=$(POD_NAME)" in resource
    for variable in re.findall(r"\$\((\w+)\)", resource):  # each comes from the downward API
        assert "fieldRef" in env[variable]["valueFrom"], variable
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"]["value"] == "True"
    assert "secretKeyRef" in env["LITELLM_MASTER_KEY"]["valueFrom"]
    # Every replica's budget guard shares the one Redis Service.
    redis_port = of_kind(k8s, "Service")["budget-redis"]["spec"]["ports"][0]["port"]
    assert env["LITELLM_COST_OTEL_BUDGET_STORE"]["value"] == "redis"
    assert env["LITELLM_COST_OTEL_BUDGET_REDIS_URL"]["value"] == f"redis://budget-redis:{redis_port}/0"
    assert of_kind(k8s, "Deployment")["litellm"]["spec"]["replicas"] > 1
