"""Plugin registration: the plugin is under `litellm_settings.callbacks`, where the proxy loads
it (`plugin-not-registered`, `plugin-wrong-callback-list`), and before litellm's own `otel`
callback (`plugin-after-otel`).
"""

from __future__ import annotations

from .config import Config
from .findings import Finding, finding, invalid
from .source import Loc, YList, kind_of

PLUGIN = "litellm_cost_otel.proxy_handler_instance"
LITELLM_OTEL_CALLBACK = "otel"


def check_plugin_registration(config: Config) -> list[Finding]:
    findings: list[Finding] = []
    callbacks = _callback_names(config, "callbacks", findings)
    registered = any(name == PLUGIN for name, _ in callbacks)
    misplaced = False
    for key in ("success_callback", "failure_callback"):
        for name, loc in _callback_names(config, key, findings):
            if name == PLUGIN:
                misplaced = True
                findings.append(finding(
                    "plugin-wrong-callback-list", "warning" if registered else "error", loc,
                    f"the plugin is listed under `litellm_settings.{key}`: a CustomLogger there gets no proxy "
                    "events" + (", so this entry does nothing" if registered else ", so no request gets a cost span"),
                    f"move `{PLUGIN}` to `litellm_settings.callbacks`" if not registered
                    else f"remove it from `{key}` (it is already under `callbacks`)"))
    if not registered and not misplaced:
        where = config.section_loc("litellm_settings")
        findings.append(finding(
            "plugin-not-registered", "error", where,
            f"`{PLUGIN}` is not in `litellm_settings.callbacks`: the proxy never loads the plugin, so no cost spans",
            f'add `callbacks: ["{PLUGIN}"]` under `litellm_settings`'))
    names = [name for name, _ in callbacks]
    if registered and LITELLM_OTEL_CALLBACK in names and names.index(LITELLM_OTEL_CALLBACK) < names.index(PLUGIN):
        findings.append(finding(
            "plugin-after-otel", "info", callbacks[names.index(PLUGIN)][1],
            f'the plugin is listed after litellm\'s "{LITELLM_OTEL_CALLBACK}" callback: this works, but the '
            "documented and tested order is the plugin first",
            f'list `{PLUGIN}` before "{LITELLM_OTEL_CALLBACK}" in `litellm_settings.callbacks`'))
    return findings


def _callback_names(config: Config, key: str, findings: list[Finding]) -> list[tuple[str, Loc]]:
    settings = config.litellm_settings
    value = settings.get(key)
    if value is None:
        return []
    if isinstance(value, str) and key == "callbacks":  # the proxy also takes one dotted path
        return [(value.strip(), settings.loc_of(key))]
    if not isinstance(value, YList):
        findings.append(invalid(settings.loc_of(key), f"`litellm_settings.{key}` must be a list, not {kind_of(value)}",
                                f'write `{key}: ["name", ...]`'))
        return []
    return [(item.strip(), value.loc_of(i)) for i, item in enumerate(value) if isinstance(item, str)]
