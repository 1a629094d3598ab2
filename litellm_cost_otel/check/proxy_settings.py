"""Router and general settings: retries (`num-retries-implicit`), deployment order
(`order-collision`, `deployment-unreachable`), the master key (`master-key-*`), and keys written
twice (`duplicate-key`).
"""

from __future__ import annotations

from typing import Any

from .config import UNSET, Config, Deployment, env_name
from .findings import Finding, finding, invalid
from .source import Loc, kind_of

LITELLM_DEFAULT_RETRIES = 2  # openai.DEFAULT_MAX_RETRIES, what litellm.Router uses when nothing is set
# Master keys seen in litellm's docs and quick starts: anyone scanning for proxies tries them first.
KNOWN_WEAK_MASTER_KEYS = frozenset({"sk-1234", "sk-12345", "sk-123456", "sk-admin", "sk-master", "sk-test",
                                    "sk-secret", "sk-litellm", "changeme", "password", "admin", "secret"})
MIN_MASTER_KEY_LENGTH = 32  # `sk-` + `openssl rand -hex 32` is 67 characters


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


def check_duplicate_keys(config: Config) -> list[Finding]:
    return [finding("duplicate-key", "warning", loc,
                    f"`{key}` is written twice in the same mapping: YAML keeps the last one and silently drops "
                    "the other", "merge the two into one")
            for key, loc in config.duplicate_keys]
