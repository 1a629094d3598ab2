"""The plugin's own settings, in one place.

Each setting is read from a LITELLM_COST_OTEL_* environment variable or from the proxy YAML's
`callback_settings.litellm_cost_otel` section (the environment wins). OpenTelemetry itself is
configured by the standard OTEL_* variables (see telemetry.py).

A bad value is reported at start-up with its key and value, as an error, and replaced by its
default: a typo must not stop the gateway, and every default is the privacy-preserving one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .budgets import Budget, parse_budgets

log = logging.getLogger("litellm_cost_otel")

YAML_SECTION = "litellm_cost_otel"  # under callback_settings: in the proxy YAML
ENV_PREFIX = "LITELLM_COST_OTEL_"

# Who-spent-it fields the request span can carry (attribution). Off by default: the ones
# that identify a person (user, end user) or carry client-chosen text (tags), and the key hash.
ATTRIBUTION_FIELDS = ("team_id", "team_alias", "org_id", "key_alias", "key_hash", "user_id", "end_user_id",
                      "tags")
DEFAULT_ATTRIBUTION = frozenset({"team_id", "team_alias", "org_id", "key_alias"})


@dataclass(frozen=True, slots=True)
class Settings:
    use_global_provider: bool = False  # use the process's global tracer/meter providers
    request_timeout_s: float = 900.0  # idle seconds before an unfinished request is ended
    max_inflight_requests: int = 10_000
    attribution: frozenset[str] = DEFAULT_ATTRIBUTION
    metrics_team_dimension: bool = False  # team alias as a metric dimension
    metrics_max_values_per_dimension: int = 100  # beyond it, values become "_OTHER"
    capture_content: bool = False  # gen_ai.input.messages / gen_ai.output.messages
    content_max_chars: int = 4096
    max_value_chars: int = 256  # any other string read from the hooks (model names, ids, tags)
    openinference: bool = True  # OpenInference twins of the GenAI attributes (Phoenix)
    # The budget guard (README "Budgets"): off while `budgets` is empty.
    budgets: tuple[Budget, ...] = ()
    budget_store: str = "in_process"  # in_process | redis
    budget_redis_url: str | None = None  # default: the proxy's own REDIS_HOST / REDIS_PORT / REDIS_PASSWORD
    budget_on_store_error: str = "allow"  # allow | deny
    budget_max_output_tokens: int = 4096  # the output estimate when a request sets no max_tokens
    budget_store_timeout_s: float = 0.5


def _parse_bool(text: object) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _positive(kind: type[int] | type[float]) -> Callable[[object], Any]:
    def parse(value: object) -> int | float:
        if isinstance(value, bool):
            raise ValueError("expected a positive number")
        number = kind(value if isinstance(value, (int, float)) else str(value))
        if not number > 0:
            raise ValueError("expected a positive number")
        return number

    return parse


def _parse_attribution(value: object) -> frozenset[str]:
    names = value if isinstance(value, (list, tuple)) else str(value).split(",")
    chosen = frozenset(str(name).strip() for name in names if str(name).strip())
    unknown = chosen - set(ATTRIBUTION_FIELDS) - {"none"}
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}; choose from {', '.join(ATTRIBUTION_FIELDS)} or none")
    return chosen - {"none"}


def _parse_budgets(value: object) -> tuple[Budget, ...]:
    """Every budget that can be enforced; each one that cannot is logged by name (the others
    still apply, and the gateway starts)."""
    budgets, errors = parse_budgets(value)
    for error in errors:
        log.error("litellm_cost_otel: %s; this budget is not enforced", error)
    return tuple(budgets)


def _choice(*choices: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return text

    return parse


def _parse_redis_url(value: object) -> str:
    """A URL, or `os.environ/NAME` as elsewhere in litellm's YAML."""
    text = str(value).strip()
    if text.startswith("os.environ/"):
        name = text.removeprefix("os.environ/")
        if name not in os.environ:
            raise ValueError(f"the environment has no {name}")
        text = os.environ[name]
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected a redis://, rediss:// or unix:// URL")
    return text


_PARSERS: dict[str, Callable[[object], Any]] = {
    "use_global_provider": _parse_bool,
    "request_timeout_s": _positive(float),
    "max_inflight_requests": _positive(int),
    "attribution": _parse_attribution,
    "metrics_team_dimension": _parse_bool,
    "metrics_max_values_per_dimension": _positive(int),
    "capture_content": _parse_bool,
    "content_max_chars": _positive(int),
    "max_value_chars": _positive(int),
    "openinference": _parse_bool,
    "budgets": _parse_budgets,
    "budget_store": _choice("in_process", "redis"),
    "budget_redis_url": _parse_redis_url,
    "budget_on_store_error": _choice("allow", "deny"),
    "budget_max_output_tokens": _positive(int),
    "budget_store_timeout_s": _positive(float),
}
# Setting name -> environment variable (and YAML key: the setting name itself).
ENV_NAMES = {
    "use_global_provider": "LITELLM_COST_OTEL_USE_GLOBAL_PROVIDER",
    "request_timeout_s": "LITELLM_COST_OTEL_REQUEST_TIMEOUT",
    "max_inflight_requests": "LITELLM_COST_OTEL_MAX_INFLIGHT_REQUESTS",
    "attribution": "LITELLM_COST_OTEL_ATTRIBUTION",
    "metrics_team_dimension": "LITELLM_COST_OTEL_METRICS_TEAM_DIMENSION",
    "metrics_max_values_per_dimension": "LITELLM_COST_OTEL_METRICS_MAX_VALUES_PER_DIMENSION",
    "capture_content": "LITELLM_COST_OTEL_CAPTURE_CONTENT",
    "content_max_chars": "LITELLM_COST_OTEL_CONTENT_MAX_CHARS",
    "max_value_chars": "LITELLM_COST_OTEL_MAX_VALUE_CHARS",
    "openinference": "LITELLM_COST_OTEL_OPENINFERENCE",
    # `budgets` is a list: YAML only.
    "budget_store": "LITELLM_COST_OTEL_BUDGET_STORE",
    "budget_redis_url": "LITELLM_COST_OTEL_BUDGET_REDIS_URL",
    "budget_on_store_error": "LITELLM_COST_OTEL_BUDGET_ON_STORE_ERROR",
    "budget_max_output_tokens": "LITELLM_COST_OTEL_BUDGET_MAX_OUTPUT_TOKENS",
    "budget_store_timeout_s": "LITELLM_COST_OTEL_BUDGET_STORE_TIMEOUT",
}
# The GenAI conventions' own switch for content capture is honoured too.
GENAI_CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def _read(name: str, raw: object, source: str, default: Any) -> Any:
    try:
        return _PARSERS[name](raw)
    except (TypeError, ValueError) as error:
        log.error("litellm_cost_otel: invalid setting %s=%r (%s); using the default %r", source, raw, error, default)
        return default


def load_settings(environ: Mapping[str, str] | None = None, yaml_section: object = None) -> Settings:
    """Settings from the YAML section, then the environment on top; every bad key or value
    is logged by name."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    defaults = Settings()
    if yaml_section is not None and not isinstance(yaml_section, Mapping):
        log.error("litellm_cost_otel: callback_settings.%s must be a mapping, got %r; ignoring it",
                  YAML_SECTION, yaml_section)
        yaml_section = None
    for key, raw in (yaml_section or {}).items():
        if key not in _PARSERS:
            log.error("litellm_cost_otel: unknown setting callback_settings.%s.%s; known: %s",
                      YAML_SECTION, key, ", ".join(_PARSERS))
            continue
        values[key] = _read(key, raw, f"callback_settings.{YAML_SECTION}.{key}", getattr(defaults, key))
    known_env = set(ENV_NAMES.values())
    for variable in env:
        if variable.startswith(ENV_PREFIX) and variable not in known_env:
            log.error("litellm_cost_otel: unknown environment variable %s; known: %s", variable,
                      ", ".join(sorted(known_env)))
    for key, variable in ENV_NAMES.items():  # (budgets has none)
        if variable in env:
            values[key] = _read(key, env[variable], variable, getattr(defaults, key))
    if "capture_content" not in values and GENAI_CAPTURE_ENV in env:
        values["capture_content"] = _read("capture_content", env[GENAI_CAPTURE_ENV], GENAI_CAPTURE_ENV, False)
    return Settings(**values)


def settings_from_proxy() -> Settings:
    """On the proxy: the environment plus `callback_settings.litellm_cost_otel` of the YAML
    (litellm stores that section before it builds the callbacks)."""
    try:
        import litellm

        section = (getattr(litellm, "callback_settings", None) or {}).get(YAML_SECTION)
    except Exception:  # reading an optional section must never stop the plugin
        section = None
    return load_settings(yaml_section=section)
