"""The config as the rules see it: the sections the proxy reads, each checked for its type, the
deployments of model_list, and the environment that `os.environ/NAME` references resolve in.

Rules never print, exit or raise on a malformed value: a value of the wrong type is itself a
finding (`invalid-config`), and the section is then read as empty so the other rules still run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any

from .fallback_graph import FallbackGraph, fallback_graph
from .findings import Finding, invalid
from .source import Loc, YList, YMap, kind_of

ENV_PREFIX = "os.environ/"


class Unset(Enum):
    """The value of an `os.environ/NAME` reference whose variable is not set here."""

    UNSET = "unset"


UNSET = Unset.UNSET


def env_name(value: Any) -> str | None:
    """NAME for an `os.environ/NAME` reference, else None."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        return value[len(ENV_PREFIX):]
    return None


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
        """Built once, on first use: the fallback and residency rules all read it."""
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
