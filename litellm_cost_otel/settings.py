"""The plugin's own settings, from LITELLM_COST_OTEL_* environment variables.

OpenTelemetry itself is configured by the standard OTEL_* variables (see telemetry.py). A bad
value is reported with the variable's name and value and replaced by its default: a typo in
an environment variable must not stop the gateway.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger("litellm_cost_otel")
T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class Settings:
    use_global_provider: bool = False  # LITELLM_COST_OTEL_USE_GLOBAL_TRACER_PROVIDER
    request_timeout_s: float = 900.0  # LITELLM_COST_OTEL_REQUEST_TIMEOUT: idle seconds before giving up
    max_inflight_requests: int = 10_000  # LITELLM_COST_OTEL_MAX_INFLIGHT_REQUESTS


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


def _positive(kind: Callable[[str], T]) -> Callable[[str], T]:
    def parse(text: str) -> T:
        value = kind(text)
        if not value > 0:  # type: ignore[operator]
            raise ValueError("expected a positive number")
        return value
    return parse


def _read(environ: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    text = environ.get(name)
    if text is None:
        return default
    try:
        return parse(text)
    except ValueError as error:
        log.warning("litellm_cost_otel: ignoring %s=%r (%s); using the default %r", name, text, error, default)
        return default


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    default = Settings()
    return Settings(
        use_global_provider=_read(env, "LITELLM_COST_OTEL_USE_GLOBAL_TRACER_PROVIDER", _parse_bool,
                                  default.use_global_provider),
        request_timeout_s=_read(env, "LITELLM_COST_OTEL_REQUEST_TIMEOUT", _positive(float), default.request_timeout_s),
        max_inflight_requests=_read(env, "LITELLM_COST_OTEL_MAX_INFLIGHT_REQUESTS", _positive(int),
                                    default.max_inflight_requests),
    )
