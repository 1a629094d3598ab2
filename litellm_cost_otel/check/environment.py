"""The environment the proxy starts in: the `os.environ/NAME` references it must set
(`env-var-unset`) and where litellm's price map comes from (`cost-map-fetched-at-startup`).
Only variable names are ever reported, never a value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .config import Config, env_name
from .findings import Finding, finding
from .source import Loc, YList, YMap

COST_MAP_VARIABLE = "LITELLM_LOCAL_MODEL_COST_MAP"


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
