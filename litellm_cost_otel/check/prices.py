"""Prices: every deployment is priced, by its explicit prices or by litellm's price map
(`unpriced-deployment`, `partially-priced-deployment`). Only the price-map lookup imports
litellm, lazily, because importing it takes seconds.
"""

from __future__ import annotations

import contextlib
import io
import os
from functools import lru_cache
from typing import Any

from .config import UNSET, Config, Deployment, env_name
from .environment import COST_MAP_VARIABLE
from .findings import Finding, finding, invalid
from .source import Loc, kind_of

TOKEN_PRICES = ("input_cost_per_token", "output_cost_per_token")
SECOND_PRICES = ("input_cost_per_second", "output_cost_per_second")


def check_prices(config: Config) -> list[Finding]:
    findings: list[Finding] = []
    for deployment in config.deployments:
        findings.extend(check_deployment_price(config, deployment))
    return findings


def check_deployment_price(config: Config, deployment: Deployment) -> list[Finding]:
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
