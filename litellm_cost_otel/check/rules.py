"""Every rule of `litellm-cost-otel check`, in the order they run. Each takes the `Config` and
returns its findings; the module of a rule is named by its theme.
"""

from __future__ import annotations

from collections.abc import Callable

from .budgets import check_budgets
from .config import Config
from .environment import check_cost_map_source, check_env_references
from .fallbacks import check_fallback_cycles, check_fallback_groups_exist, check_fallback_unreachable
from .findings import Finding
from .prices import check_prices
from .proxy_settings import check_duplicate_keys, check_master_key, check_num_retries, check_order
from .registration import check_plugin_registration
from .residency import check_data_residency

Rule = Callable[[Config], list[Finding]]

# check_file sorts the findings, so this order only breaks ties between otherwise equal ones.
RULES: tuple[Rule, ...] = (
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
    check_budgets,
)
