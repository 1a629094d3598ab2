"""`litellm-cost-otel check`: one test per finding kind on small real configs, the JSON shape,
exit codes through the installed console script, and malformed input. No mocks: the price
lookup uses litellm's real (bundled) price map."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from litellm_cost_otel import cli
from litellm_cost_otel.check import Report, check_file

ROOT = Path(__file__).parent.parent
CONFIGS = Path(__file__).parent / "check_configs"
SCRIPT = str(Path(sys.executable).with_name("litellm-cost-otel"))  # the console script pip installed
PLUGIN = "litellm_cost_otel.proxy_handler_instance"
MASTER_KEY_VALUE = "sk-" + "5c0ffee1" * 8  # a strong key: set in the environment, never to be printed
MISTRAL_KEY_VALUE = "mistral-secret-" + "a1b2c3d4" * 4
ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "MISTRAL_API_KEY": MISTRAL_KEY_VALUE,
       "LITELLM_MASTER_KEY": MASTER_KEY_VALUE}
ALL_CODES = {
    "invalid-config", "duplicate-key", "env-var-unset", "plugin-not-registered", "plugin-wrong-callback-list",
    "plugin-after-otel", "unpriced-deployment", "partially-priced-deployment", "fallback-unknown-group",
    "fallback-unreachable", "fallback-cycle", "local-fallback-to-cloud", "local-group-mixed",
    "num-retries-implicit", "order-collision", "deployment-unreachable", "master-key-missing", "master-key-weak",
    "master-key-literal", "cost-map-fetched-at-startup", "invalid-budget", "budget-unknown-team",
    "budget-unknown-group", "budget-unpriced-group",
}


def deployment(group: str, model: str, **params: Any) -> dict[str, Any]:
    return {"model_name": group, "litellm_params": {"model": model, **params}}


def local(group: str, model: str = "openai/local-model") -> dict[str, Any]:
    return {**deployment(group, model, input_cost_per_token=2e-7, output_cost_per_token=6e-7),
            "model_info": {"data_residency": "local"}}


def clean_config() -> dict[str, Any]:
    """A config with no finding at all, in ENV: each test adds one mistake to it."""
    return {
        "model_list": [
            deployment("fast", "mistral/mistral-small-latest", api_key="os.environ/MISTRAL_API_KEY", order=1),
            deployment("fast", "mistral/open-mistral-nemo", api_key="os.environ/MISTRAL_API_KEY", order=2),
            deployment("capable", "mistral/mistral-large-latest", api_key="os.environ/MISTRAL_API_KEY"),
            local("local"),
        ],
        "router_settings": {"num_retries": 2, "fallbacks": [{"fast": ["capable"]}]},
        "litellm_settings": {"callbacks": [PLUGIN]},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }


def priced_explicitly(config: dict[str, Any]) -> dict[str, Any]:
    """The same config with a price on every deployment: checking it never imports litellm,
    which keeps the console-script tests at a fraction of a second each."""
    for item in config["model_list"]:
        item["litellm_params"] |= {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    return config


def write(tmp_path: Path, config: dict[str, Any] | str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    return path


def check(tmp_path: Path, config: dict[str, Any] | str, env: dict[str, str] | None = None) -> Report:
    return check_file(str(write(tmp_path, config)), ENV if env is None else env)


def lines_of(path: Path, needle: str) -> list[int]:
    return [i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line]


def line_of(path: Path, needle: str) -> int:
    return lines_of(path, needle)[0]


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("LITELLM_MASTER_KEY", "MISTRAL_API_KEY")}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=60, env={**base, **(env or {})})


# --- the clean baseline and the repository's own configs ---------------------------------------

def test_clean_config_has_no_findings(tmp_path: Path) -> None:
    report = check(tmp_path, clean_config())
    assert report.findings == []
    assert report.exit_code(strict=True) == 0


def test_the_repository_proxy_config_passes_through_the_console_script() -> None:
    result = run_script("check", str(ROOT / "proxy_config.yaml"), "--format", "json",
                        env={"MISTRAL_API_KEY": MISTRAL_KEY_VALUE, "LITELLM_MASTER_KEY": MASTER_KEY_VALUE})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["error"] == 0
    # Only the two variables left unset here are reported; set values are never printed.
    assert {(f["code"], f["message"].split("`")[1]) for f in report["findings"]} == {
        ("env-var-unset", "os.environ/LOCAL_MODEL_BASE_URL"), ("env-var-unset", "os.environ/LOCAL_MODEL_API_KEY")}
    assert MISTRAL_KEY_VALUE not in result.stdout and MASTER_KEY_VALUE not in result.stdout


def test_the_offline_demo_config_passes() -> None:
    report = check_file(str(ROOT / "litellm_cost_otel/devtools/offline_config.yaml"), ENV)
    assert report.exit_code(strict=False) == 0
    assert {f.code for f in report.findings} == {"env-var-unset"}  # LOCAL_MODEL_BASE_URL, set by the demo


# --- plugin registration ------------------------------------------------------------------------

def test_plugin_not_registered(tmp_path: Path) -> None:
    config = clean_config()
    config["litellm_settings"] = {"callbacks": ["otel"]}
    (finding,) = check(tmp_path, config).findings
    assert (finding.code, finding.severity) == ("plugin-not-registered", "error")
    assert PLUGIN in finding.fix and "callbacks" in finding.fix


@pytest.mark.parametrize("key", ["success_callback", "failure_callback"])
def test_plugin_under_success_or_failure_callback_is_an_error(tmp_path: Path, key: str) -> None:
    config = clean_config()
    config["litellm_settings"] = {key: [PLUGIN]}
    path = write(tmp_path, config)
    (finding,) = check_file(str(path), ENV).findings
    assert (finding.code, finding.severity, finding.line) == ("plugin-wrong-callback-list", "error",
                                                              line_of(path, f"- {PLUGIN}"))
    assert key in finding.message


def test_plugin_also_under_success_callback_is_a_warning(tmp_path: Path) -> None:
    config = clean_config()
    config["litellm_settings"]["success_callback"] = [PLUGIN]
    (finding,) = check(tmp_path, config).findings
    assert (finding.code, finding.severity) == ("plugin-wrong-callback-list", "warning")


def test_plugin_after_litellm_otel_callback(tmp_path: Path) -> None:
    config = clean_config()
    config["litellm_settings"]["callbacks"] = ["otel", PLUGIN]
    (finding,) = check(tmp_path, config).findings
    assert (finding.code, finding.severity) == ("plugin-after-otel", "info")
    config["litellm_settings"]["callbacks"] = [PLUGIN, "otel"]
    assert check(tmp_path, config).findings == []


def test_plugin_as_a_single_dotted_path_is_registered(tmp_path: Path) -> None:
    config = clean_config()
    config["litellm_settings"]["callbacks"] = PLUGIN  # the proxy accepts one path as a string
    assert check(tmp_path, config).findings == []


# --- prices ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["openai/local-model", "hosted_vllm/my-llama", "mistral/not-a-mistral-model"])
def test_deployment_without_any_price(tmp_path: Path, model: str) -> None:
    config = clean_config()
    config["model_list"].append(deployment("extra", model))
    path = write(tmp_path, config)
    (finding,) = check_file(str(path), ENV).findings
    assert (finding.code, finding.severity) == ("unpriced-deployment", "error")
    assert finding.line == lines_of(path, f"model: {model}")[-1] and model in finding.message


def test_deployment_priced_zero_by_litellms_map(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"].append(deployment("ollama", "ollama/llama3"))  # litellm's map says 0.0 for both
    (finding,) = check(tmp_path, config).findings
    assert finding.code == "unpriced-deployment" and "costs $0" in finding.message


@pytest.mark.parametrize(("model", "params", "info"), [
    ("gpt-4o", {}, {}),  # no provider prefix: litellm infers openai
    ("mistral-small-latest", {"custom_llm_provider": "mistral"}, {}),  # provider given apart
    ("azure/my-company-gpt4o", {}, {"base_model": "azure/gpt-4o"}),  # free-text Azure name, priced by base_model
    ("openai/local", {"input_cost_per_token": "2e-7", "output_cost_per_token": "6e-7"}, {}),  # YAML reads 2e-7 as str
    ("openai/local", {}, {"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7}),  # prices in model_info
    ("openai/whisper-local", {"input_cost_per_second": 0.0001}, {}),  # per-second pricing
    ("openai/local", {"input_cost_per_token": 0, "output_cost_per_token": 0}, {}),  # explicitly free
    ("openai/local", {"input_cost_per_second": 0, "output_cost_per_second": 0}, {}),  # explicitly free
])
def test_priced_deployments_pass(tmp_path: Path, model: str, params: dict[str, Any], info: dict[str, Any]) -> None:
    config = clean_config()
    config["model_list"].append({**deployment("extra", model, **params), "model_info": info})
    assert check(tmp_path, config).findings == []


def test_base_model_missing_from_the_price_map(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"].append({**deployment("azure", "azure/gpt-4o"), "model_info": {"base_model": "azure/nope"}})
    (finding,) = check(tmp_path, config).findings
    assert finding.code == "unpriced-deployment" and "base_model `azure/nope`" in finding.message


def test_only_one_price_set_to_zero_is_not_explicitly_free(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"].append(deployment("extra", "mistral/mistral-small-latest", input_cost_per_token=0))
    (finding,) = check(tmp_path, config).findings
    assert finding.code == "unpriced-deployment" and "input_cost_per_token: 0" in finding.message


def test_partially_priced_deployment(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"].append(deployment("extra", "mistral/mistral-small-latest", input_cost_per_token=1e-6))
    path = write(tmp_path, config)
    (finding,) = check_file(str(path), ENV).findings
    assert (finding.code, finding.severity) == ("partially-priced-deployment", "error")
    assert finding.line == line_of(path, "input_cost_per_token: 1.0e-06") and "output_cost_per_token" in finding.fix


def test_wildcard_and_environment_models_are_not_priced_here(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"] += [deployment("openai/*", "openai/*"), deployment("env", "os.environ/CHECK_TEST_MODEL")]
    assert [f.code for f in check(tmp_path, config).findings] == ["env-var-unset"]


def test_model_from_a_set_variable_is_priced_without_printing_it(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"].append(deployment("env", "os.environ/CHECK_TEST_MODEL"))
    (finding,) = check(tmp_path, config, {**ENV, "CHECK_TEST_MODEL": "ollama/llama3"}).findings
    assert finding.code == "unpriced-deployment"
    assert "ollama/llama3" not in finding.message + finding.fix and "os.environ/CHECK_TEST_MODEL" in finding.message


# --- fallbacks -----------------------------------------------------------------------------------

def test_fallback_to_a_group_that_does_not_exist(tmp_path: Path) -> None:
    config = clean_config()
    config["router_settings"]["fallbacks"] = [{"fast": ["Capable"]}, {"nope": ["capable"]}]
    config["router_settings"]["default_fallbacks"] = ["gone"]
    path = write(tmp_path, config)
    findings = check_file(str(path), ENV).findings
    assert [(f.code, f.severity, f.line) for f in findings] == [
        ("fallback-unknown-group", "error", line_of(path, "- Capable")),
        ("fallback-unknown-group", "error", line_of(path, "- nope:")),
        ("fallback-unknown-group", "error", line_of(path, "- gone")),
    ]


def test_unknown_fallback_group_is_a_warning_when_models_live_in_the_database(tmp_path: Path) -> None:
    config = clean_config()
    config["router_settings"]["fallbacks"] = [{"fast": ["from-db"]}]
    config["general_settings"]["store_model_in_db"] = True
    (finding,) = check(tmp_path, config).findings
    assert (finding.code, finding.severity) == ("fallback-unknown-group", "warning")


def test_fallbacks_to_aliases_and_wildcard_groups_exist(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"].append(deployment("openai/*", "openai/*"))
    config["router_settings"]["model_group_alias"] = {"big": "capable"}
    config["router_settings"]["fallbacks"] = [{"fast": ["big", "openai/gpt-4o"]}]
    assert check(tmp_path, config).findings == []


def test_fallbacks_under_litellm_settings_are_read(tmp_path: Path) -> None:
    config = clean_config()
    del config["router_settings"]["fallbacks"]
    config["litellm_settings"]["fallbacks"] = [{"fast": ["typo"]}]
    (finding,) = check(tmp_path, config).findings
    assert finding.code == "fallback-unknown-group" and "litellm_settings.fallbacks" in finding.message


def test_fallback_cycle(tmp_path: Path) -> None:
    config = clean_config()
    config["router_settings"]["context_window_fallbacks"] = [{"capable": ["fast"]}]
    path = write(tmp_path, config)
    (finding,) = check_file(str(path), ENV).findings
    assert (finding.code, finding.severity, finding.line) == ("fallback-cycle", "info", line_of(path, "- fast:"))
    assert "fast → capable → fast" in finding.message


@pytest.mark.parametrize(("fallbacks", "needle"), [
    ([{"fast": ["capable"]}, {"fast": ["local"]}], "never tried"),  # litellm stops at a group's first rule
    ([{"fast": ["fast", "capable"]}], "lists itself"),
    ([{"fast": ["capable", "capable"]}], "listed twice"),
    ([{"*": ["capable"]}, {"fast": ["capable"]}], "uses the last one"),  # default_fallbacks wins over this `*`
])
def test_fallback_entries_litellm_never_tries(tmp_path: Path, fallbacks: list[Any], needle: str) -> None:
    config = clean_config()
    config["router_settings"]["fallbacks"] = fallbacks
    config["router_settings"]["default_fallbacks"] = ["capable"]
    codes = [(f.code, f.severity) for f in check(tmp_path, config).findings if needle in f.message]
    assert codes == [("fallback-unreachable", "warning")]


def test_fallbacks_under_litellm_settings_ignored_when_router_settings_has_them(tmp_path: Path) -> None:
    config = clean_config()
    config["litellm_settings"]["fallbacks"] = [{"capable": ["fast"]}]
    (finding,) = check(tmp_path, config).findings
    assert finding.code == "fallback-unreachable" and "is ignored" in finding.message


# --- data residency ------------------------------------------------------------------------------

@pytest.mark.parametrize(("router_settings", "path_shown"), [
    ({"fallbacks": [{"local": ["capable"]}]}, "local → capable"),
    ({"fallbacks": [{"local": ["local-2"]}, {"local-2": ["fast"]}]}, "local → local-2 → fast"),  # transitive
    ({"default_fallbacks": ["capable"]}, "local → capable"),  # the catch-all applies to local too
    ({"context_window_fallbacks": [{"local": ["capable"]}]}, "local → capable"),
    ({"model_group_alias": {"backup": "capable"}, "fallbacks": [{"local": ["backup"]}]}, "local → capable"),
])
def test_local_group_falling_back_to_a_cloud_group(tmp_path: Path, router_settings: dict[str, Any],
                                                   path_shown: str) -> None:
    config = clean_config()
    config["model_list"].append(local("local-2"))
    config["router_settings"] |= router_settings
    findings = check(tmp_path, config).findings
    (finding,) = [f for f in findings if f.code == "local-fallback-to-cloud" and "group `local` " in f.message]
    assert finding.severity == "error" and path_shown in finding.message
    assert {f.code for f in findings} == {"local-fallback-to-cloud"}


def test_local_group_with_an_empty_fallback_list_is_shielded_from_default_fallbacks(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"].append(local("local-2"))
    config["router_settings"] |= {"default_fallbacks": ["capable"], "fallbacks": [{"local": ["local-2"]},
                                                                                  {"local-2": []}]}
    assert check(tmp_path, config).findings == []


def test_local_group_with_an_unmarked_deployment(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"].append(deployment("local", "mistral/mistral-small-latest"))
    path = write(tmp_path, config)
    (finding,) = check_file(str(path), ENV).findings
    assert (finding.code, finding.severity) == ("local-group-mixed", "error")
    assert finding.line == lines_of(path, "- model_name: local")[-1]  # the unmarked deployment


# --- retries and order ----------------------------------------------------------------------------

def test_num_retries_implicit(tmp_path: Path) -> None:
    config = clean_config()
    del config["router_settings"]["num_retries"]
    (finding,) = check(tmp_path, config).findings
    assert (finding.code, finding.severity) == ("num-retries-implicit", "info") and "2 times" in finding.message
    config["litellm_settings"]["num_retries"] = 0  # litellm reads it there too
    assert check(tmp_path, config).findings == []


def test_order_collision_and_deployment_without_order(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"][1]["litellm_params"]["order"] = 1
    config["model_list"].append(deployment("fast", "mistral/mistral-large-latest"))
    path = write(tmp_path, config)
    findings = check_file(str(path), ENV).findings
    assert [(f.code, f.severity) for f in findings] == [("order-collision", "warning"),
                                                        ("deployment-unreachable", "warning")]
    first, second = lines_of(path, "order: 1")
    assert findings[0].line == second and f"line {first}" in findings[0].message
    assert findings[1].line == lines_of(path, "- model_name: fast")[-1]


# --- master key and start-up ----------------------------------------------------------------------

@pytest.mark.parametrize(("master_key", "code", "severity"), [
    (None, "master-key-missing", "warning"),
    ("sk-1234", "master-key-weak", "error"),
    ("sk-my-prod-key", "master-key-weak", "error"),  # short
    ("sk-" + "f00dfeed" * 8, "master-key-literal", "warning"),
])
def test_master_key(tmp_path: Path, master_key: str | None, code: str, severity: str) -> None:
    config = clean_config()
    config["general_settings"] = {} if master_key is None else {"master_key": master_key}
    (finding,) = check(tmp_path, config).findings
    assert (finding.code, finding.severity) == (code, severity)
    assert "os.environ/LITELLM_MASTER_KEY" in finding.fix
    assert master_key is None or master_key not in finding.message + finding.fix  # a key is never echoed


def test_cost_map_advice_when_litellm_would_download_it(tmp_path: Path) -> None:
    config = clean_config()
    env = {k: v for k, v in ENV.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    (finding,) = check(tmp_path, config, env).findings
    assert (finding.code, finding.severity, finding.line) == ("cost-map-fetched-at-startup", "info", None)
    assert "proxy's environment" in finding.fix
    config["environment_variables"] = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    (finding,) = check(tmp_path, config, env).findings
    assert finding.code == "cost-map-fetched-at-startup" and "too late" in finding.message


# --- environment references, YAML-level mistakes, includes -----------------------------------------

def test_unset_variable_is_a_warning_and_set_values_are_never_printed(tmp_path: Path) -> None:
    config = clean_config()
    config["model_list"][3]["litellm_params"]["api_key"] = "os.environ/CHECK_TEST_LOCAL_KEY"
    config["model_list"][3]["litellm_params"]["api_base"] = "os.environ/CHECK_TEST_LOCAL_KEY"
    path = write(tmp_path, config)
    (finding,) = check_file(str(path), ENV).findings
    assert (finding.code, finding.severity) == ("env-var-unset", "warning")
    assert finding.line == line_of(path, "os.environ/CHECK_TEST_LOCAL_KEY") and "(2 references)" in finding.message
    output = run_script("check", str(write(tmp_path, priced_explicitly(config))), "--format", "json", env=ENV).stdout
    assert "CHECK_TEST_LOCAL_KEY" in output
    assert MISTRAL_KEY_VALUE not in output and MASTER_KEY_VALUE not in output


def test_variables_from_environment_variables_section_count_as_set(tmp_path: Path) -> None:
    config = clean_config()
    config["environment_variables"] = {"CHECK_TEST_LOCAL_KEY": "from-the-config"}
    config["model_list"][3]["litellm_params"]["api_key"] = "os.environ/CHECK_TEST_LOCAL_KEY"
    assert check(tmp_path, config).findings == []


def test_duplicate_key(tmp_path: Path) -> None:
    text = yaml.safe_dump(clean_config(), sort_keys=False) + "router_settings:\n  num_retries: 1\n"
    path = write(tmp_path, text)
    findings = check_file(str(path), ENV).findings
    assert [(f.code, f.line) for f in findings] == [("duplicate-key", len(text.splitlines()) - 1)]


def test_merge_keys_overriding_an_anchor_are_not_duplicates(tmp_path: Path) -> None:
    text = yaml.safe_dump(clean_config(), sort_keys=False) + (
        "x-defaults: &defaults {num_retries: 1, timeout: 30}\nrouter_settings:\n  <<: *defaults\n  num_retries: 3\n")
    assert [f.code for f in check(tmp_path, text).findings] == ["duplicate-key"]  # only the second router_settings


def test_include_is_followed_and_findings_name_the_included_file(tmp_path: Path) -> None:
    config = clean_config()
    config["include"] = ["models.yaml"]
    included = write(tmp_path, {"model_list": [deployment("extra", "openai/unpriced")]}, "models.yaml")
    (finding,) = check(tmp_path, config).findings
    assert (finding.code, finding.file, finding.line) == ("unpriced-deployment", str(included), 4)


@pytest.mark.parametrize(("config", "needle"), [
    ({"model_list": 5}, "`model_list` must be a list, not the number 5"),
    ({"model_list": [{"model_name": "x"}]}, "has no `litellm_params` mapping"),
    ({"model_list": [{"model_name": "x", "litellm_params": ["model"]}]}, "has no `litellm_params` mapping"),
    ({"model_list": [{"model_name": 4, "litellm_params": {"model": "gpt-4o"}}]}, "without a `model_name`"),
    ({"model_list": ["gpt-4o"]}, "item must be a mapping"),
    ({"router_settings": ["fallbacks"]}, "`router_settings` must be a mapping"),
    ({"router_settings": {"fallbacks": {"fast": ["capable"]}}}, "must be a list"),
    ({"router_settings": {"fallbacks": [{"fast": "capable"}]}}, "must be a list of group names"),
    ({"router_settings": {"fallbacks": [{"fast": ["capable"], "capable": ["fast"]}]}}, "with 2 keys"),
    ({"router_settings": {"num_retries": "two"}}, "must be a whole number"),
    ({"model_list": [deployment("x", "gpt-4o", order="first")]}, "`order` of the deployment"),
    ({"model_list": [deployment("x", "openai/x", input_cost_per_token="cheap")]}, "must be a number"),
    ({"general_settings": {"master_key": 1234}}, "master_key` must be a string"),
])
def test_wrong_types_are_findings_with_their_line(tmp_path: Path, config: dict[str, Any], needle: str) -> None:
    report = check(tmp_path, config)
    (finding,) = [f for f in report.findings if f.code == "invalid-config"]
    assert needle in finding.message and finding.severity == "error" and finding.line is not None
    assert report.exit_code(strict=False) == 1


# --- every mistake at once, and the documentation -------------------------------------------------

def expected_markers(path: Path) -> set[tuple[str, int | None]]:
    expected: set[tuple[str, int | None]] = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        marker = re.search(r"# expect: ([\w\-, ]+)$", line)
        if marker:
            expected |= {(code.strip(), number) for code in marker.group(1).split(",")}
    return expected


def test_every_mistake_at_once() -> None:
    path = CONFIGS / "every_mistake.yaml"
    env = {"PATH": os.environ.get("PATH", "")}  # no LITELLM_LOCAL_MODEL_COST_MAP, no CHECK_TEST_UNSET_KEY
    report = check_file(str(path), env)
    found = {(f.code, f.line) for f in report.findings}
    assert found == expected_markers(path) | {("cost-map-fetched-at-startup", None)}
    # All but the three that exclude another one (registered vs not, weak vs missing vs literal key).
    assert {code for code, _ in found} == ALL_CODES - {"plugin-not-registered", "master-key-missing",
                                                       "master-key-literal"}
    assert report.exit_code(strict=False) == 1


def test_every_finding_code_is_documented() -> None:
    documented = set(re.findall(r"^### `([a-z\-]+)`", (ROOT / "docs/check.md").read_text(), flags=re.MULTILINE))
    assert documented == ALL_CODES


# --- output and exit codes through the console script ----------------------------------------------

def test_json_output_shape(tmp_path: Path) -> None:
    config = clean_config()
    config["general_settings"] = {"master_key": "sk-1234"}
    del config["router_settings"]["num_retries"]
    result = run_script("check", str(write(tmp_path, priced_explicitly(config))), "--format", "json", env=ENV)
    document = json.loads(result.stdout)
    assert list(document) == ["path", "findings", "summary"]
    assert document["summary"] == {"error": 1, "warning": 0, "info": 1}
    assert [list(f) for f in document["findings"]] == [["code", "severity", "file", "line", "message", "fix"]] * 2
    weak = next(f for f in document["findings"] if f["code"] == "master-key-weak")
    assert weak["severity"] == "error" and isinstance(weak["line"], int) and weak["file"].endswith("config.yaml")
    assert result.returncode == 1


@pytest.mark.parametrize(("change", "args", "exit_code"), [
    (None, [], 0),
    ("warning", [], 0),  # warnings alone do not fail
    ("warning", ["--strict"], 1),  # unless --strict
    ("error", [], 1),
])
def test_exit_codes(tmp_path: Path, change: str | None, args: list[str], exit_code: int) -> None:
    config = clean_config()
    if change == "warning":
        config["general_settings"] = {}
    if change == "error":
        config["litellm_settings"] = {}
    result = run_script("check", str(write(tmp_path, priced_explicitly(config))), *args, env=ENV)
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith(str(tmp_path)) and result.stderr == ""


def test_exit_code_2_for_unreadable_input_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    for args in (["check", str(tmp_path / "missing.yaml")], ["check", str(write(tmp_path, "a: [1,\n"))]):
        result = run_script(*args)
        assert result.returncode == 2 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    result = run_script("check", str(tmp_path / "missing.yaml"), "--format", "json")
    assert json.loads(result.stdout)["error"].endswith("missing.yaml: no such file")
    assert run_script("check").returncode == 2  # usage error


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty"),
    (b"# only a comment\n", "the file is empty"),
    (b"- model_name: fast\n", ":1: the config must be a mapping of sections"),
    (b"just a string\n", ":1: the config must be a mapping of sections"),
    (bytes(range(256)) * 40, ":2: not UTF-8 text (byte 128)"),  # byte 10 ended line 1
    (b"model_list:\n  - model_name: [\n", ":3: invalid YAML"),
    (b"a: 1\nb: \x00\n", ":2: invalid YAML: control characters are not allowed"),
    (b"a: !Ref x\n", ":1: invalid YAML: could not determine a constructor for the tag '!Ref'"),
    (b"a: 1\n---\nb: 2\n", "invalid YAML: expected a single document"),
    (b"[" * 20000 + b"]" * 20000, "invalid YAML"),
    (b"? [a]\n: 1\n", ":1: a mapping key must be a plain value"),
    (b"include: [other.yaml]\n", ":1: included file `other.yaml` not found"),
    (b"include: other.yaml\n", ":1: `include` must be a list of file paths"),
])
def test_malformed_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes,
                                            message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    assert cli.main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith(f"litellm-cost-otel: {path}") and message in captured.err


def test_a_directory_is_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_alias_bomb_stays_small(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["os.environ/CHECK_TEST_BOMB"]'] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]  # 9**11 items if expanded
    (finding,) = [f for f in check(tmp_path, "\n".join(lines) + "\n").findings if f.code == "env-var-unset"]
    assert finding.line == 1


def test_huge_config_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 5 MB in some 5,000 deployments: long descriptions keep the node count, and the test, small.
    one = yaml.safe_dump([{**deployment("g{}", "openai/m{}", input_cost_per_token=1e-6, output_cost_per_token=2e-6),
                           "model_info": {"description": "A deployment. " * 70}}], width=200)
    count = 5_000_000 // len(one) + 1
    text = "model_list:\n" + "".join(one.replace("{}", str(i)) for i in range(count)) + (
        "- model_name: last\n  litellm_params: {model: openai/unpriced-at-the-end}\n")
    path = write(tmp_path, text)
    assert path.stat().st_size > 5_000_000
    assert cli.main(["check", str(path), "--format", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    unpriced = [f for f in findings if f["code"] == "unpriced-deployment"]
    assert [f["line"] for f in unpriced] == [len(text.splitlines())]
