"""Fallback rules: every group a fallback names exists (`fallback-unknown-group`), no entry is
one litellm never tries (`fallback-unreachable`), and cycles are pointed out (`fallback-cycle`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .config import Config
from .fallback_graph import FallbackGraph
from .findings import Finding, Severity, finding


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
