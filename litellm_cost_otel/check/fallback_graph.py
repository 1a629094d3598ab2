"""The fallback routing litellm.Router would do for a config: which rule applies to a group, and
which groups a failed request may move to next. The fallback and data-residency rules read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .findings import Finding, invalid
from .source import Loc, YList, YMap, kind_of

if TYPE_CHECKING:  # config.py builds the graph (Config.fallbacks): importing it here would be circular
    from .config import Config, Deployment

FALLBACK_KINDS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")


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
