"""Budgets (callback_settings.litellm_cost_otel.budgets, README "Budgets"): each one can be
enforced (`invalid-budget`), a `match` names what the config knows (`budget-unknown-team`,
`budget-unknown-group`), and a budget on a model group can see a cost (`budget-unpriced-group`).
"""

from __future__ import annotations

from ..budgets import BudgetConfigError, parse_budget
from ..settings import YAML_SECTION
from .config import Config
from .findings import Finding, finding, invalid
from .prices import check_deployment_price
from .source import YList, YMap, kind_of


def _budgets(config: Config) -> tuple[YList | None, list[Finding]]:
    section = config.root.get("callback_settings")
    plugin = section.get(YAML_SECTION) if isinstance(section, YMap) else None
    budgets = plugin.get("budgets") if isinstance(plugin, YMap) else None
    if budgets is None or isinstance(budgets, YList):
        return budgets, []
    assert isinstance(plugin, YMap)
    return None, [invalid(plugin.loc_of("budgets"), f"`budgets` must be a list of budgets, not {kind_of(budgets)}",
                          "write `budgets:` followed by `- name: ..., scope: ..., limit_usd: ...` items")]


def _known_teams(config: Config) -> set[str]:
    """Team ids and aliases the config itself declares (litellm_settings.default_team_settings)."""
    teams = config.litellm_settings.get("default_team_settings")
    known: set[str] = set()
    for team in teams if isinstance(teams, list) else []:
        if isinstance(team, dict):
            known |= {str(team[key]) for key in ("team_id", "team_alias") if team.get(key)}
    return known


def _unpriced(config: Config, group: str) -> bool:
    return any(f.code == "unpriced-deployment" for deployment in config.groups.get(group, [])
               for f in check_deployment_price(config, deployment))


def check_budgets(config: Config) -> list[Finding]:
    entries, findings = _budgets(config)
    if entries is None:
        return findings
    teams = _known_teams(config)
    for index, entry in enumerate(entries):
        loc = entries.loc_of(index)
        try:
            budget = parse_budget(entry, index)
        except BudgetConfigError as error:
            findings.append(finding("invalid-budget", "error", loc, f"{error}: the plugin does not enforce it",
                                    "fix the entry as the message says (README, \"Budgets\")"))
            continue
        names = sorted(budget.match or ())
        if budget.scope == "team" and teams:
            for name in (n for n in names if n not in teams):
                findings.append(finding(
                    "budget-unknown-team", "warning", loc,
                    f"budget `{budget.name}` matches team `{name}`, which default_team_settings does not declare: "
                    "it applies to no request unless the database has that team",
                    "use the team's exact id or alias (case-sensitive)"))
        if budget.scope != "model_group":
            continue
        for group in names or sorted(config.groups):
            if group not in config.groups:
                findings.append(finding(
                    "budget-unknown-group", "error", loc,
                    f"budget `{budget.name}` matches model group `{group}`, which is no model_name in model_list: "
                    "it never applies", "use the exact model_name of a group (names are case-sensitive)"))
            elif _unpriced(config, group):
                findings.append(finding(
                    "budget-unpriced-group", "error", loc,
                    f"budget `{budget.name}` counts group `{group}`, which litellm prices at $0: its spend never "
                    "grows and the budget never refuses a request", "price the group's deployments (see "
                    "`unpriced-deployment`)"))
    return findings
