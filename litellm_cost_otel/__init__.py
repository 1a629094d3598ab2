"""litellm-cost-otel: per-request cost, token and latency spans for the LiteLLM proxy.

Register on the proxy with
    litellm_settings:
      callbacks: ["litellm_cost_otel.proxy_handler_instance"]
or in-process with `litellm.callbacks = [CostOtelLogger()]`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .logger import CostOtelLogger

__all__ = ["CostOtelLogger", "proxy_handler_instance"]
__version__ = "0.1.0"

_instance: CostOtelLogger | None = None


def __getattr__(name: str) -> Any:
    # Imported and built on first access: importing the package (or its devtools) neither
    # imports litellm nor sets up an exporter.
    global _instance
    if name == "CostOtelLogger":
        from .logger import CostOtelLogger
        return CostOtelLogger
    if name == "proxy_handler_instance":
        if _instance is None:
            from .logger import proxy_handler
            _instance = proxy_handler()
        return _instance
    raise AttributeError(f"module 'litellm_cost_otel' has no attribute {name!r}")
