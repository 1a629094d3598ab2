"""Data residency: a group marked local keeps its requests on your infrastructure, through any
chain of fallbacks (`local-fallback-to-cloud`) and within the group (`local-group-mixed`).
"""

from __future__ import annotations

from .config import Config, Deployment
from .fallback_graph import FallbackGraph, FallbackRule
from .findings import Finding, finding

LOCAL_RESIDENCY = "local"


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
