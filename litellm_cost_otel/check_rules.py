"""The rules of `litellm-cost-otel check`: one function per configuration mistake that makes
cost silently wrong or missing.

A rule reads the config the way the proxy would (a `Config`: the YAML with every value's file
and line, plus the environment) and returns `Finding`s. Rules never print, exit or raise on a
malformed value: a value of the wrong type is itself a finding (`invalid-config`). Only the
price lookup imports litellm, lazily, because importing it takes seconds.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property, lru_cache
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

PLUGIN = "litellm_cost_otel.proxy_handler_instance"
LITELLM_OTEL_CALLBACK = "otel"
ENV_PREFIX = "os.environ/"
COST_MAP_VARIABLE = "LITELLM_LOCAL_MODEL_COST_MAP"
LOCAL_RESIDENCY = "local"
FALLBACK_KINDS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
LITELLM_DEFAULT_RETRIES = 2  # openai.DEFAULT_MAX_RETRIES, what litellm.Router uses when nothing is set
TOKEN_PRICES = ("input_cost_per_token", "output_cost_per_token")
SECOND_PRICES = ("input_cost_per_second", "output_cost_per_second")
# Master keys seen in litellm's docs and quick starts: anyone scanning for proxies tries them first.
KNOWN_WEAK_MASTER_KEYS = frozenset({"sk-1234", "sk-12345", "sk-123456", "sk-admin", "sk-master", "sk-test",
                                    "sk-secret", "sk-litellm", "changeme", "password", "admin", "secret"})
MIN_MASTER_KEY_LENGTH = 32  # `sk-` + `openssl rand -hex 32` is 67 characters


@dataclass(frozen=True, slots=True)
class Loc:
    """Where a value was written: the file and its 1-based line (None: the value is absent)."""

    file: str
    line: int | None


class YMap(dict[Any, Any]):
    """A YAML mapping that remembers where it, and each of its keys, were written."""

    def __init__(self, loc: Loc) -> None:
        super().__init__()
        self.loc = loc
        self.key_locs: dict[Any, Loc] = {}

    def loc_of(self, key: Any) -> Loc:
        return self.key_locs.get(key, self.loc)


class YList(list[Any]):
    """A YAML sequence that remembers where it, and each of its items, were written."""

    def __init__(self, loc: Loc) -> None:
        super().__init__()
        self.loc = loc
        self.item_locs: list[Loc] = []

    def loc_of(self, index: int) -> Loc:
        return self.item_locs[index] if index < len(self.item_locs) else self.loc


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    file: str
    line: int | None
    message: str
    fix: str


def finding(code: str, severity: Severity, loc: Loc, message: str, fix: str) -> Finding:
    return Finding(code, severity, loc.file, loc.line, message, fix)


def invalid(loc: Loc, message: str, fix: str) -> Finding:
    return finding("invalid-config", "error", loc, message, fix)


class Unset(Enum):
    """The value of an `os.environ/NAME` reference whose variable is not set here."""

    UNSET = "unset"


UNSET = Unset.UNSET


def env_name(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        return value[len(ENV_PREFIX):]
    return None


def kind_of(value: Any) -> str:
    """How a message names a value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Deployment:
    group: str  # model_name
    loc: Loc  # the model_list item
    params: YMap  # litellm_params
    info: YMap  # model_info (empty when absent)

    @property
    def model(self) -> str:
        return str(self.params.get("model"))  # checked to be a string when the config was read

    def label(self) -> str:
        return f"deployment of `{self.group}` ({self.model})"


@dataclass
class Config:
    """The proxy config as the rules see it. `environ` is this process's environment
    (`process_environ`) plus the config's own `environment_variables`, which the proxy exports
    before it reads the rest."""

    path: str
    root: YMap
    process_environ: Mapping[str, str]
    environ: Mapping[str, str]
    deployments: list[Deployment]
    router_settings: YMap
    litellm_settings: YMap
    general_settings: YMap
    duplicate_keys: list[tuple[Any, Loc]] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)  # invalid-config found while reading it

    def resolve(self, value: Any) -> Any:
        """The value the proxy would use: an `os.environ/NAME` reference replaced by the variable,
        UNSET when it is not set here."""
        name = env_name(value)
        return value if name is None else self.environ.get(name, UNSET)

    def section_loc(self, name: str) -> Loc:
        """Where a top-level section's key is written, for findings about what it lacks."""
        return self.root.loc_of(name) if name in self.root else Loc(self.path, None)

    def setting(self, name: str) -> tuple[Any, Loc, str] | None:
        """A router setting as litellm.Router reads it: router_settings wins when set (and not
        empty), litellm_settings (which litellm copies onto its module) is the fallback."""
        for section, label in ((self.router_settings, "router_settings"), (self.litellm_settings, "litellm_settings")):
            if section.get(name) not in (None, [], {}):
                return section[name], section.loc_of(name), f"{label}.{name}"
        return None

    @cached_property
    def groups(self) -> dict[str, list[Deployment]]:
        grouped: dict[str, list[Deployment]] = {}
        for deployment in self.deployments:
            grouped.setdefault(deployment.group, []).append(deployment)
        return grouped

    @cached_property
    def fallbacks(self) -> FallbackGraph:
        return fallback_graph(self)


def read_config(path: str, root: YMap, environ: Mapping[str, str],
                duplicate_keys: Sequence[tuple[Any, Loc]] = ()) -> Config:
    """The sections the rules read, each checked for its type: a wrong one is a finding, and the
    section is then read as empty so the other rules still run."""
    problems: list[Finding] = []

    def section(name: str) -> YMap:
        value = root.get(name)
        if isinstance(value, YMap):
            return value
        if value is not None:
            problems.append(invalid(root.loc_of(name), f"`{name}` must be a mapping, not {kind_of(value)}",
                                    f"write `{name}:` followed by indented `key: value` lines"))
        return YMap(root.loc_of(name) if name in root else Loc(path, None))

    merged_environ = dict(environ)
    for name, value in section("environment_variables").items():
        reference = env_name(value)
        resolved = environ.get(reference, UNSET) if reference else value
        if resolved is not UNSET and resolved is not None:
            merged_environ[str(name)] = str(resolved)
    return Config(
        path=path, root=root, process_environ=environ, environ=merged_environ,
        deployments=_read_deployments(root, problems),
        router_settings=section("router_settings"), litellm_settings=section("litellm_settings"),
        general_settings=section("general_settings"),
        duplicate_keys=list(duplicate_keys), problems=problems,
    )


def _read_deployments(root: YMap, problems: list[Finding]) -> list[Deployment]:
    model_list = root.get("model_list")
    if model_list is None:
        return []
    if not isinstance(model_list, YList):
        problems.append(invalid(root.loc_of("model_list"), f"`model_list` must be a list, not {kind_of(model_list)}",
                                "write each deployment as a `- model_name: ...` item under `model_list:`"))
        return []
    deployments: list[Deployment] = []
    for index, item in enumerate(model_list):
        loc = model_list.loc_of(index)
        fix = "give each deployment `model_name: GROUP` and `litellm_params:` with `model: provider/model`"
        if not isinstance(item, YMap):
            problems.append(invalid(loc, f"a `model_list` item must be a mapping, not {kind_of(item)}", fix))
            continue
        group, params, info = item.get("model_name"), item.get("litellm_params"), item.get("model_info")
        if not isinstance(group, str) or not group:
            problems.append(invalid(loc, f"deployment without a `model_name` string (found {kind_of(group)})", fix))
            continue
        if not isinstance(params, YMap):
            problems.append(invalid(loc, f"deployment of `{group}` has no `litellm_params` mapping "
                                         f"(found {kind_of(params)}): the proxy cannot start with it", fix))
            continue
        if not isinstance(params.get("model"), str) or not params["model"]:
            problems.append(invalid(params.loc_of("model"), f"deployment of `{group}` has no `litellm_params.model` "
                                                            f"string (found {kind_of(params.get('model'))})", fix))
            continue
        if info is not None and not isinstance(info, YMap):
            problems.append(invalid(item.loc_of("model_info"),
                                    f"`model_info` of `{group}` must be a mapping, not {kind_of(info)}", fix))
            info = None
        deployments.append(Deployment(group, loc, params, info if isinstance(info, YMap) else YMap(loc)))
    return deployments


# --- environment references -------------------------------------------------------------------

def check_env_references(config: Config) -> list[Finding]:
    """Unset `os.environ/NAME` references: a warning, since the deploy environment sets them.
    Only names are ever reported, never a value."""
    first_seen: dict[str, Loc] = {}
    counts: dict[str, int] = {}
    in_file_order = sorted(_env_references(config.root), key=lambda ref: (ref[1].file != config.path, ref[1].line or 0))
    for name, loc in in_file_order:
        first_seen.setdefault(name, loc)
        counts[name] = counts.get(name, 0) + 1
    return [
        finding("env-var-unset", "warning", loc,
                f"`os.environ/{name}` is not set in this environment"
                + (f" ({counts[name]} references)" if counts[name] > 1 else "")
                + ": the proxy needs it at start-up; checks that need its value were skipped",
                f"make sure {name} is set in the proxy's environment (unset here is fine)")
        for name, loc in first_seen.items() if name not in config.environ
    ]


def _env_references(root: YMap) -> Iterator[tuple[str, Loc]]:
    seen: set[int] = set()  # YAML aliases share nodes: visit each once
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        items = [(node[key], node.loc_of(key)) for key in node] if isinstance(node, YMap) else (
            [(value, node.loc_of(i)) for i, value in enumerate(node)])
        for value, loc in items:
            name = env_name(value)
            if name:
                yield name, loc
            elif isinstance(value, YMap | YList):
                stack.append(value)


# --- plugin registration ----------------------------------------------------------------------

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


# --- prices -----------------------------------------------------------------------------------

def check_prices(config: Config) -> list[Finding]:
    findings: list[Finding] = []
    for deployment in config.deployments:
        findings.extend(_check_price(config, deployment))
    return findings


def _check_price(config: Config, deployment: Deployment) -> list[Finding]:
    model = config.resolve(deployment.params["model"])
    if model is UNSET or not isinstance(model, str) or "*" in model or "*" in deployment.group:
        return []  # unknown until deploy time, or a wildcard route priced per requested model
    explicit: dict[str, tuple[float, Loc]] = {}
    for section in (deployment.info, deployment.params):  # litellm_params wins, as in litellm's Router
        for key in (*TOKEN_PRICES, *SECOND_PRICES):
            if key not in section:
                continue
            value = config.resolve(section[key])
            if value is UNSET:
                return []
            number = _as_number(value)
            if number is None:
                return [invalid(section.loc_of(key), f"`{key}` of the {deployment.label()} must be a number "
                                                     f"(USD), not {kind_of(value)}",
                                f"write it as a plain number, e.g. `{key}: 0.0000002`")]
            explicit[key] = (number, section.loc_of(key))
    if explicit:
        return _check_explicit_price(deployment, explicit)
    return _check_price_map(config, deployment, model)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):  # YAML reads `2e-7` as a string; litellm's pydantic model accepts it
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _check_explicit_price(deployment: Deployment, explicit: dict[str, tuple[float, Loc]]) -> list[Finding]:
    price_loc = next(iter(explicit.values()))[1]
    if all(value == 0 for value, _ in explicit.values()):
        if set(TOKEN_PRICES) <= explicit.keys() or set(SECOND_PRICES) <= explicit.keys():
            return []  # explicitly free: both sides of a pair written as 0
        return [finding(
            "unpriced-deployment", "error", price_loc,
            f"the {deployment.label()} sets {', '.join(f'`{k}: 0`' for k in explicit)} only: litellm prices it $0",
            "set real prices, or mark it free on purpose with both `input_cost_per_token: 0` and "
            "`output_cost_per_token: 0`")]
    missing = [key for key in TOKEN_PRICES if key not in explicit]
    if len(missing) == 1 and not any(key in explicit for key in SECOND_PRICES):
        priced = next(key for key in TOKEN_PRICES if key in explicit)
        return [finding(
            "partially-priced-deployment", "error", price_loc,
            f"the {deployment.label()} sets `{priced}` but not `{missing[0]}`: litellm then prices every "
            f"{missing[0].split('_')[0]} token at $0 (it does not take the missing side from its price map)",
            f"set `{missing[0]}` too (USD per token), or 0 if that side is really free")]
    return []


def _check_price_map(config: Config, deployment: Deployment, model: str) -> list[Finding]:
    # litellm prices a deployment by its base_model when it has one (Azure deployment names are free text).
    written_base_model = deployment.info.get("base_model") or deployment.params.get("base_model")
    base_model = config.resolve(written_base_model)
    if base_model is UNSET:
        return []
    provider = deployment.params.get("custom_llm_provider")
    looked_up = base_model if isinstance(base_model, str) and base_model else model
    entry = price_map_entry(looked_up, provider if isinstance(provider, str) else None)
    # Named as written: a value read from the environment is never printed.
    named = f"base_model `{written_base_model}`" if looked_up == base_model else f"`{deployment.model}`"
    fix = ("set `input_cost_per_token` and `output_cost_per_token` (USD per token) in its litellm_params, "
           "or both to 0 to mark it free on purpose")
    if entry is None:
        return [finding("unpriced-deployment", "error", deployment.params.loc_of("model"),
                        f"the {deployment.label()} has no price: {named} is not in litellm's price map and the "
                        "config sets none, so every span of it says $0", fix)]
    key, prices = entry
    if not any(isinstance(v, int | float) and not isinstance(v, bool) and v > 0
               for k, v in prices.items() if "cost" in k):
        from_environment = env_name(deployment.params["model"]) or env_name(written_base_model)
        as_key = "" if from_environment or key == looked_up else f" (as `{key}`)"
        return [finding("unpriced-deployment", "error", deployment.params.loc_of("model"),
                        f"the {deployment.label()} costs $0: litellm's price map prices {named}{as_key} at 0", fix)]
    return []


@lru_cache(maxsize=4096)
def price_map_entry(model: str, provider: str | None) -> tuple[str, dict[str, Any]] | None:
    """The entry of litellm's price map that prices `model`, found the way litellm's
    get_model_info does (with and without the provider prefix, case-insensitively), without
    its per-provider hooks, which may call the provider's API."""
    # The bundled price map: no download at import. The caller's own setting was read before.
    os.environ.setdefault(COST_MAP_VARIABLE, "True")
    # litellm prints to stdout (e.g. "Provider List: ...") when it cannot tell a provider.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import litellm
        from litellm.utils import _check_provider_match, get_model_cost_key, get_potential_model_names

        try:
            model = {**litellm.azure_llms, **litellm.azure_embedding_models}.get(model, model)
            names = get_potential_model_names(model, provider)
        except Exception:  # a model string litellm cannot parse at all
            return None
    candidates = (names["combined_model_name"], model, names["region_free_combined_model_name"],
                  names["split_model"], names["combined_stripped_model_name"], names["stripped_model_name"],
                  names["provider_prefixed_model_name"])
    for candidate in candidates:
        key = get_model_cost_key(str(candidate))
        if key is not None and _check_provider_match(litellm.model_cost[key], names["custom_llm_provider"]):
            return key, dict(litellm.model_cost[key])
    return None


# --- fallbacks --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FallbackRule:
    kind: str  # one of FALLBACK_KINDS
    setting: str  # where it is written, e.g. "router_settings.fallbacks"
    source: str  # a group, or "*": every group without a rule of its own (default_fallbacks)
    targets: tuple[tuple[str, Loc], ...]
    loc: Loc


@dataclass
class FallbackGraph:
    """The fallback rules litellm.Router would use, and the names a fallback may point at."""

    rules: dict[str, list[FallbackRule]]  # by kind, in litellm's lookup order
    groups: dict[str, list[Deployment]]
    aliases: dict[str, str]  # router_settings.model_group_alias
    problems: list[Finding]  # invalid-config in the fallback settings
    ignored: list[tuple[str, Loc]]  # litellm_settings lists shadowed by router_settings: (kind, where)
    wildcards: list[tuple[str, re.Pattern[str]]] = field(init=False)
    first_rule: dict[tuple[str, str], FallbackRule] = field(init=False)  # (kind, source): litellm uses the first
    last_generic: dict[str, FallbackRule] = field(init=False)  # kind: the `*` rule litellm uses, the last
    _edges: dict[str, list[tuple[str, FallbackRule]]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.wildcards = [(group, _wildcard(group)) for group in self.groups if "*" in group]
        self.first_rule, self.last_generic = {}, {}
        for kind, rules in self.rules.items():
            for rule in rules:
                self.first_rule.setdefault((kind, rule.source), rule)
                if rule.source == "*":
                    self.last_generic[kind] = rule

    def exists(self, name: str) -> bool:
        return self.canonical(name) in self.groups

    def canonical(self, name: str) -> str:
        """The group a name routes to: itself, an alias's group, or a wildcard group matching it."""
        name = self.aliases.get(name, name)
        if name in self.groups:
            return name
        return next((group for group, pattern in self.wildcards if pattern.fullmatch(name)), name)

    def rule_for(self, kind: str, group: str) -> FallbackRule | None:
        """The rule litellm applies to `group`: its first own rule, else the last `*` rule."""
        return self.first_rule.get((kind, group)) or self.last_generic.get(kind)

    def edges(self, group: str) -> list[tuple[str, FallbackRule]]:
        """Groups a failed request in `group` may move to next (litellm skips the failed group)."""
        if group not in self._edges:
            found: dict[str, FallbackRule] = {}
            for kind in FALLBACK_KINDS:
                rule = self.rule_for(kind, group)
                if rule is None:
                    continue
                for name, _ in rule.targets:
                    target = self.canonical(name)
                    if target != group and target in self.groups:
                        found.setdefault(target, rule)
            self._edges[group] = list(found.items())
        return self._edges[group]


def _wildcard(group: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in group.split("*")))


def fallback_graph(config: Config) -> FallbackGraph:
    problems: list[Finding] = []
    ignored: list[tuple[str, Loc]] = []
    rules: dict[str, list[FallbackRule]] = {}
    for kind in (*FALLBACK_KINDS, "default_fallbacks"):
        chosen = config.setting(kind)
        if chosen is not None and chosen[2].startswith("router_settings") and (
                config.litellm_settings.get(kind) not in (None, [], {})):
            ignored.append((kind, config.litellm_settings.loc_of(kind)))
    for kind in FALLBACK_KINDS:
        chosen = config.setting(kind)
        if chosen is None:
            continue
        value, loc, setting = chosen
        rules[kind] = _read_fallback_rules(kind, setting, value, loc, problems)
    default = config.setting("default_fallbacks")
    if default is not None:
        value, loc, setting = default
        if isinstance(value, YList) and all(isinstance(target, str) for target in value):
            targets = tuple((target, value.loc_of(i)) for i, target in enumerate(value))
            rules.setdefault("fallbacks", []).append(FallbackRule("fallbacks", setting, "*", targets, loc))
        else:
            problems.append(invalid(loc, f"`{setting}` must be a list of group names, not {kind_of(value)}",
                                    "write `default_fallbacks: [group, ...]`"))
    return FallbackGraph(rules, config.groups, _aliases(config), problems, ignored)


def _read_fallback_rules(kind: str, setting: str, value: Any, loc: Loc, problems: list[Finding]) -> list[FallbackRule]:
    fix = f"write `{kind}:` as a list of one-key mappings, e.g. `- fast: [capable]`"
    if not isinstance(value, YList):
        problems.append(invalid(loc, f"`{setting}` must be a list, not {kind_of(value)}", fix))
        return []
    rules: list[FallbackRule] = []
    for index, item in enumerate(value):
        item_loc = value.loc_of(index)
        if not isinstance(item, YMap) or len(item) != 1:
            problems.append(invalid(item_loc, f"each `{setting}` item must map one group to a list of groups "
                                              f"(found {kind_of(item)}" + (f" with {len(item)} keys)"
                                                                           if isinstance(item, YMap) else ")"), fix))
            continue
        ((source, targets),) = item.items()
        if not isinstance(targets, YList) or not all(isinstance(t, str) for t in targets):
            problems.append(invalid(item_loc, f"the fallbacks of `{source}` in `{setting}` must be a list of group "
                                              f"names, not {kind_of(targets)}", fix))
            continue
        rules.append(FallbackRule(kind, setting, str(source),
                                  tuple((t, targets.loc_of(i)) for i, t in enumerate(targets)), item_loc))
    return rules


def _aliases(config: Config) -> dict[str, str]:
    value = config.router_settings.get("model_group_alias")
    if not isinstance(value, YMap):
        return {}
    aliases: dict[str, str] = {}
    for alias, target in value.items():  # `alias: group` or `alias: {model: group, hidden: true}`
        group = target.get("model") if isinstance(target, YMap) else target
        if isinstance(group, str):
            aliases[str(alias)] = group
    return aliases


def check_fallback_groups_exist(config: Config) -> list[Finding]:
    """Every group a fallback setting names exists (and the settings have the shape litellm needs)."""
    graph = config.fallbacks
    in_db = config.general_settings.get("store_model_in_db") is True
    severity: Severity = "warning" if in_db else "error"
    maybe = " (unless it is defined in the database: store_model_in_db is on)" if in_db else ""
    findings = list(graph.problems)
    for rules in graph.rules.values():
        for rule in rules:
            if rule.source != "*" and not graph.exists(rule.source):
                findings.append(finding(
                    "fallback-unknown-group", severity, rule.loc,
                    f"`{rule.setting}` sets fallbacks for `{rule.source}`, which is no model_name in model_list"
                    f"{maybe}: the rule never applies",
                    "use the exact model_name of a group (names are case-sensitive)"))
            for target, loc in rule.targets:
                if not graph.exists(target):
                    origin = "every group without its own fallbacks" if rule.source == "*" else f"`{rule.source}`"
                    findings.append(finding(
                        "fallback-unknown-group", severity, loc,
                        f"`{rule.setting}` falls back from {origin} to `{target}`, which is no model_name in "
                        f"model_list{maybe}: that fallback fails instead of answering",
                        "use the exact model_name of a group (names are case-sensitive), or add the group"))
    return findings


def check_fallback_unreachable(config: Config) -> list[Finding]:
    """Fallback entries litellm never tries: a group's second rule (litellm stops at the first),
    every `*` rule but the last, a group listed as its own fallback, a target listed twice."""
    graph = config.fallbacks
    findings = [finding("fallback-unreachable", "warning", loc,
                        f"`litellm_settings.{kind}` is ignored: litellm uses `router_settings.{kind}` if both are set",
                        f"merge the two into `router_settings.{kind}` and delete this one")
                for kind, loc in graph.ignored]
    for kind, rules in graph.rules.items():
        for rule in rules:
            used_generic = graph.last_generic.get(kind)
            if rule.source == "*" and used_generic is not rule and used_generic is not None:
                findings.append(finding(
                    "fallback-unreachable", "warning", rule.loc,
                    f"this `*` rule in `{rule.setting}` is never used: litellm uses the last one "
                    f"(`{used_generic.setting}`, line {used_generic.loc.line})",
                    "keep a single catch-all list (default_fallbacks)"))
            first = graph.first_rule[(kind, rule.source)]
            if rule.source != "*" and first is not rule:
                findings.append(finding(
                    "fallback-unreachable", "warning", rule.loc,
                    f"`{rule.source}` already has fallbacks at line {first.loc.line}: litellm uses the first "
                    "rule only, so this one is never tried",
                    f"merge the two lists for `{rule.source}` into one"))
                continue
            seen: set[str] = set()
            for target, loc in rule.targets:
                if target == rule.source:
                    findings.append(finding(
                        "fallback-unreachable", "warning", loc,
                        f"`{rule.source}` lists itself as a fallback: litellm never retries the group that failed "
                        "as a fallback", f"remove `{target}` from its own list (use num_retries for retries)"))
                elif target in seen:
                    findings.append(finding(
                        "fallback-unreachable", "warning", loc,
                        f"`{target}` is listed twice in the fallbacks of `{rule.source}`: litellm never tries a "
                        "group twice in one request", "remove the second occurrence"))
                seen.add(target)
    return findings


def check_fallback_cycles(config: Config) -> list[Finding]:
    graph = config.fallbacks
    findings: list[Finding] = []
    for component in _strongly_connected(list(graph.groups), lambda group: [t for t, _ in graph.edges(group)]):
        if len(component) < 2:
            continue
        cycle = _cycle_through(component[0], set(component), graph)
        first_rule = next(rule for target, rule in graph.edges(cycle[0]) if target == cycle[1])
        findings.append(finding(
            "fallback-cycle", "info", first_rule.loc,
            f"fallback cycle {' → '.join(cycle)}: litellm skips groups a request already tried, so this ends, "
            "but a request's path depends on where it entered",
            "make sure each direction is intended; a one-way chain (fast → capable) is easier to reason about"))
    return findings


def _strongly_connected(nodes: list[str], edges: Callable[[str], list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (a config may hold thousands of groups)."""
    position = {node: i for i, node in enumerate(nodes)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(edges(start)))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            successor = next(successors, None)
            if successor is not None:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges(successor))))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component, key=position.__getitem__) if len(component) > 1 else component)
    return components


def _cycle_through(start: str, members: set[str], graph: FallbackGraph) -> list[str]:
    """A shortest cycle from `start` back to it, within one strongly connected component."""
    parents: dict[str, str] = {}
    queue = [start]
    for node in queue:
        for target, _ in graph.edges(node):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [*reversed(path), start]
            if target in members and target not in parents:
                parents[target] = node
                queue.append(target)
    return [start, start]  # unreachable for a component of two or more


# --- data residency ---------------------------------------------------------------------------

def _is_local(config: Config, deployment: Deployment) -> bool:
    value = config.resolve(deployment.info.get("data_residency"))
    return isinstance(value, str) and value.strip().lower() == LOCAL_RESIDENCY


def check_data_residency(config: Config) -> list[Finding]:
    """A local group (any deployment with model_info.data_residency: local) must not reach a
    non-local group through any chain of fallbacks, and must not share its group with one."""
    graph = config.fallbacks
    local_groups = {group for group, deployments in graph.groups.items()
                    if any(_is_local(config, d) for d in deployments)}
    findings: list[Finding] = []
    for group in graph.groups:
        if group not in local_groups:
            continue
        for deployment in graph.groups[group]:
            if not _is_local(config, deployment):
                findings.append(finding(
                    "local-group-mixed", "error", deployment.loc,
                    f"group `{group}` is local, but this {deployment.label()} is not marked "
                    "`model_info.data_residency: local`: the router load-balances local requests onto it",
                    "mark it `data_residency: local` if it runs on your infrastructure, or move it to another group"))
        paths = _paths_out_of(group, local_groups, graph)
        if paths:
            first_rule = paths[0][1]
            shown = "; ".join(" → ".join(path) for path, _ in paths[:3]) + (" ..." if len(paths) > 3 else "")
            findings.append(finding(
                "local-fallback-to-cloud", "error", first_rule.loc,
                f"local group `{group}` can fall back to non-local group(s): {shown} (first hop from "
                f"`{first_rule.setting}`): its data leaves your infrastructure when it fails",
                f"give `{group}` its own fallback list of local groups only (`- {group}: []` for none: it also "
                "stops default_fallbacks from applying)"))
    return findings


def _paths_out_of(start: str, local_groups: set[str], graph: FallbackGraph) -> list[tuple[list[str], FallbackRule]]:
    """Shortest fallback paths from `start` to each non-local group, with the rule of the first hop."""
    paths: dict[str, tuple[list[str], FallbackRule | None]] = {start: ([start], None)}
    queue = [start]
    found: list[tuple[list[str], FallbackRule]] = []
    for node in queue:
        path, first_rule = paths[node]
        for target, rule in graph.edges(node):
            if target in paths:
                continue
            paths[target] = ([*path, target], first_rule or rule)
            if target in local_groups:
                queue.append(target)  # only local groups pass data on: a cloud hop is already the leak
            else:
                found.append((paths[target][0], first_rule or rule))
    return found


# --- retries and order ------------------------------------------------------------------------

def check_num_retries(config: Config) -> list[Finding]:
    chosen = config.setting("num_retries")
    if chosen is not None:
        value, loc, setting = chosen
        resolved = config.resolve(value)
        if resolved is not UNSET and _as_int(resolved) is None:
            return [invalid(loc, f"`{setting}` must be a whole number, not {kind_of(value)}",
                            "write e.g. `num_retries: 2`")]
        return []
    if config.setting("retry_policy") or config.setting("model_group_retry_policy"):
        return []  # retries set per error type or per group
    if config.deployments and all("num_retries" in d.params for d in config.deployments):
        return []
    return [finding(
        "num-retries-implicit", "info", config.section_loc("router_settings"),
        f"`num_retries` is not set: litellm retries each failed call {LITELLM_DEFAULT_RETRIES} times, each retry a "
        "billed call that shows as its own attempt span",
        "set `router_settings.num_retries` explicitly (e.g. 2, or 0 to fail over to fallbacks at once)")]


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():  # the proxy passes digit strings through
        return int(value)
    return None


def check_order(config: Config) -> list[Finding]:
    """`order` within a group: litellm routes to the lowest order only, tries the next order when it
    fails, load-balances deployments of equal order, and never picks one without an order."""
    findings: list[Finding] = []
    for group, deployments in config.groups.items():
        orders: list[tuple[Deployment, int, Loc]] = []  # the order as resolved, and where it is written
        for deployment in deployments:
            section = deployment.params if "order" in deployment.params else deployment.info
            value = config.resolve(section.get("order"))
            if value is None or value is UNSET:
                continue
            order = _as_int(value)
            if order is None:
                findings.append(invalid(section.loc_of("order"), f"`order` of the {deployment.label()} must be a "
                                                                 f"whole number, not {kind_of(value)}",
                                        "write e.g. `order: 1` (1 is tried first)"))
                continue
            orders.append((deployment, order, section.loc_of("order")))
        if not orders:
            continue
        ordered = {id(d) for d, _, _ in orders}
        for deployment in deployments:
            if id(deployment) not in ordered:
                findings.append(finding(
                    "deployment-unreachable", "warning", deployment.loc,
                    f"the {deployment.label()} has no `order` while others in `{group}` have one: litellm only "
                    "routes to deployments with an order, so this one is never used",
                    "give it an `order` (a higher number is a backup), or remove it"))
        first_at: dict[int, Loc] = {}
        for deployment, order, loc in orders:
            if order in first_at:
                findings.append(finding(
                    "order-collision", "warning", loc,
                    f"the {deployment.label()} has the same `order` as the one at line {first_at[order].line}: "
                    "litellm load-balances between them instead of trying one before the other",
                    "give each deployment its own order (1 first, 2 its backup, ...) unless you mean to split "
                    "traffic between them"))
            else:
                first_at[order] = loc
    return findings


# --- master key and start-up ------------------------------------------------------------------

def check_master_key(config: Config) -> list[Finding]:
    settings = config.general_settings
    value = settings.get("master_key")
    fix = "set `master_key: os.environ/LITELLM_MASTER_KEY` and generate it with `echo sk-$(openssl rand -hex 32)`"
    if value is None:
        return [finding("master-key-missing", "warning", config.section_loc("general_settings"),
                        "no `general_settings.master_key`: the proxy falls back to the LITELLM_MASTER_KEY variable "
                        "and refuses to start (or runs without auth) when that is unset", fix)]
    loc = settings.loc_of("master_key")
    if env_name(value) is not None:
        return []  # read from the environment at deploy time: never inspected, never printed
    if not isinstance(value, str):
        return [invalid(loc, f"`general_settings.master_key` must be a string, not {kind_of(value)}", fix)]
    key = value.strip()
    if key.lower() in KNOWN_WEAK_MASTER_KEYS or len(key) < MIN_MASTER_KEY_LENGTH:
        why = "a publicly known default" if key.lower() in KNOWN_WEAK_MASTER_KEYS else (
            f"only {len(key)} characters (fewer than {MIN_MASTER_KEY_LENGTH})" if key else "empty")
        return [finding("master-key-weak", "error", loc,
                        f"the master key is written in the file and is {why}: anyone who guesses it can spend "
                        "through the proxy and read every key's spend", fix)]
    return [finding("master-key-literal", "warning", loc,
                    "the master key is written in the file: it ends up in version control and in every copy of "
                    "the config", fix)]


def check_cost_map_source(config: Config) -> list[Finding]:
    """litellm downloads its price map when imported unless LITELLM_LOCAL_MODEL_COST_MAP=True."""
    if config.process_environ.get(COST_MAP_VARIABLE, "").lower() == "true":
        return []
    section = config.root.get("environment_variables")
    in_config = isinstance(section, YMap) and COST_MAP_VARIABLE in section
    where = section.loc_of(COST_MAP_VARIABLE) if isinstance(section, YMap) and in_config else Loc(config.path, None)
    return [finding(
        "cost-map-fetched-at-startup", "info", where,
        (f"{COST_MAP_VARIABLE} under `environment_variables` is too late: litellm loads its price map when "
         "imported, before it reads this file" if in_config else
         f"{COST_MAP_VARIABLE} is not True in this environment: unless the proxy's environment sets it, litellm "
         "downloads its price map from GitHub at every start-up (a network call at boot; prices, and so costs, "
         "can change between restarts)"),
        f"set {COST_MAP_VARIABLE}=True in the proxy's environment (Dockerfile, Kubernetes env, systemd unit) to use "
        "the price map bundled with the pinned litellm")]


def check_duplicate_keys(config: Config) -> list[Finding]:
    return [finding("duplicate-key", "warning", loc,
                    f"`{key}` is written twice in the same mapping: YAML keeps the last one and silently drops "
                    "the other", "merge the two into one")
            for key, loc in config.duplicate_keys]


RULES: tuple[Callable[[Config], list[Finding]], ...] = (
    check_duplicate_keys,
    check_env_references,
    check_plugin_registration,
    check_prices,
    check_fallback_groups_exist,
    check_fallback_unreachable,
    check_fallback_cycles,
    check_data_residency,
    check_num_retries,
    check_order,
    check_master_key,
    check_cost_map_source,
)
