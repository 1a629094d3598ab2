"""A CustomLogger with the plugin's hooks, each doing nothing: what litellm itself spends
calling a callback's hooks, the floor under any plugin (`--configs none,noop,plugin`)."""

from __future__ import annotations

from typing import Any

from litellm.integrations.custom_logger import CustomLogger


class NoopLogger(CustomLogger):
    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> None:
        return None

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: dict[str, Any]) -> None:
        return None

    async def async_post_call_success_deployment_hook(self, request_data: dict[str, Any], response: Any,
                                                      call_type: Any) -> None:
        return None

    async def async_post_call_failure_deployment_hook(self, request_data: Any, exception: Exception,
                                                      call_type: Any, fallback_depth: int | None = None) -> None:
        return None

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        return None

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        return None

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        return None

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        return None

    async def async_post_call_failure_hook(self, request_data: dict[str, Any], original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> None:
        return None


proxy_handler_instance = NoopLogger()
