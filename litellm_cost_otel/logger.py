"""The LiteLLM CustomLogger: a thin adapter from the proxy's hooks to record -> tracker -> spans.

Hook order on the proxy (litellm 1.108.7, see docs/design.md):
  per attempt:  async_pre_call_deployment_hook, then
                async_post_call_success_deployment_hook (not for streams) or
                async_post_call_failure_deployment_hook (not for mid-stream failures);
  end:          async_log_success_event (background task, carries the cost) or
                async_post_call_failure_hook (the only reliable final-failure signal).
`async_log_failure_event` fires once per proxy request, on the first failed attempt, so it
only closes an attempt that no deployment hook closed (a failure inside a stream).

Every hook contains its own errors: a plugin bug is logged (rate-limited) and never fails or
delays a request.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import litellm
from litellm.integrations.custom_logger import CustomLogger

from . import record
from .metrics import MetricsRecorder
from .record import Attempt, Request
from .settings import Settings, settings_from_proxy
from .spans import SpanWriter, caller_context
from .telemetry import INSTRUMENTATION_SCOPE, build_meter_provider, build_tracer_provider, flush_at_proxy_shutdown
from .tracker import RequestTracker, end_attempt, request_key

log = logging.getLogger("litellm_cost_otel")
F = TypeVar("F", bound=Callable[..., Any])
_SWEEP_EVERY_NS = 1_000_000_000


class _RateLimitedLog:
    """At most one log line per message key per interval, with a count of those suppressed."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self._interval_s = interval_s
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def __call__(self, level: int, key: str, message: str, *args: Any, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            last, suppressed = self._last.get(key, (float("-inf"), 0))
            if now - last < self._interval_s:
                self._last[key] = (last, suppressed + 1)
                return
            if len(self._last) > 1000:  # bounded, even under a storm of distinct errors
                self._last.clear()
            self._last[key] = (now, 0)
        if suppressed:
            message += f" ({suppressed} similar messages suppressed)"
        log.log(level, message, *args, exc_info=exc_info)


def _contained(hook: F) -> F:
    """Run a hook so that no exception of the plugin's own ever reaches litellm."""

    @functools.wraps(hook)
    def wrapper(self: CostOtelLogger, *args: Any, **kwargs: Any) -> Any:
        try:
            hook(self, *args, **kwargs)
        except Exception as error:  # containing every error is the point of this wrapper
            self.hook_errors += 1
            if self._metrics is not None:
                self._metrics.hook_error(hook.__name__.lstrip("_"))
            self._log(logging.ERROR, f"{hook.__name__}:{type(error).__name__}",
                      "litellm_cost_otel: %s failed; the request is unaffected", hook.__name__, exc_info=True)
        return None

    return wrapper  # type: ignore[return-value]


@functools.lru_cache(maxsize=256)
def _provider_api_base(deployment_model: str) -> str | None:
    """The provider's default endpoint, for `server.address` of deployments that set none."""
    try:
        found = litellm.get_api_base(model=deployment_model, optional_params={})
    except Exception:  # an unknown provider has no default endpoint
        return None
    return found if isinstance(found, str) else None


def _now_or(value: object) -> int:
    return record.time_ns_of(value) or record.now_ns()


class CostOtelLogger(CustomLogger):
    """Per-request cost spans for the LiteLLM proxy and litellm.Router.

    On the proxy: `litellm_settings.callbacks: ["litellm_cost_otel.proxy_handler_instance"]`.
    In-process: `litellm.callbacks = [CostOtelLogger()]`.
    """

    def __init__(self, tracer_provider: Any = None, settings: Settings | None = None,
                 meter_provider: Any = None) -> None:
        super().__init__()
        self._log = _RateLimitedLog()
        self._last_sweep_ns = 0
        self.hook_errors = 0
        self.settings = settings or settings_from_proxy()
        self._tracker = RequestTracker(self.settings.max_inflight_requests,
                                       int(self.settings.request_timeout_s * 1e9))
        self._metrics: MetricsRecorder | None = None
        self._spans: SpanWriter | None = None
        self.meter_provider, self.tracer_provider = meter_provider, tracer_provider
        try:
            self._set_up_telemetry()
        except Exception:  # a broken exporter set-up must not stop the gateway from starting
            log.error("litellm_cost_otel: telemetry set-up failed; the plugin stays inactive", exc_info=True)
            self._metrics = self._spans = None
        if self._active:
            flush_at_proxy_shutdown(self.force_flush)

    def _set_up_telemetry(self) -> None:
        self.meter_provider = self.meter_provider or build_meter_provider(self.settings)
        if self.meter_provider is not None:
            self._metrics = MetricsRecorder(
                self.meter_provider.get_meter(INSTRUMENTATION_SCOPE), self.settings.metrics_max_values_per_dimension,
                self.settings.metrics_team_dimension, self._tracker.__len__)
        self.tracer_provider = self.tracer_provider or build_tracer_provider(
            self.settings, on_drop=self._metrics.spans_dropped if self._metrics else None)
        if self.tracer_provider is not None:
            self._spans = SpanWriter(self.tracer_provider.get_tracer(INSTRUMENTATION_SCOPE), self.settings.attribution,
                                     self.settings.openinference)

    # --- hooks: one attempt --------------------------------------------------------------
    # Each hook only forwards its arguments: all reading happens inside contained steps.

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> None:
        self._attempt_started(kwargs, call_type)
        return None

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: dict[str, Any]) -> None:
        self._attempt_started(kwargs, None, in_process_only=True)

    async def async_post_call_success_deployment_hook(self, request_data: dict[str, Any], response: Any,
                                                      call_type: Any) -> None:
        self._attempt_answered(request_data, response)
        return None

    async def async_post_call_failure_deployment_hook(self, request_data: Mapping[str, Any], exception: Exception,
                                                      call_type: Any, fallback_depth: int | None = None) -> None:
        self._attempt_failed(request_data, exception, None)

    async def async_log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._attempt_failed(kwargs, None, end_time)

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._attempt_failed(kwargs, None, end_time, in_process_only=True)

    # --- hooks: the end of a request -----------------------------------------------------

    async def async_log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._request_succeeded(kwargs, response_obj, start_time, end_time)

    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._request_succeeded(kwargs, response_obj, start_time, end_time, in_process_only=True)

    async def async_post_call_failure_hook(self, request_data: dict[str, Any], original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> None:
        self._request_failed(request_data, original_exception)
        return None

    # --- steps ---------------------------------------------------------------------------

    def _key(self, kwargs: Mapping[str, Any], proxy_request: Mapping[str, Any] | None = None) -> Hashable | None:
        proxy_request = proxy_request if proxy_request is not None else record.proxy_request_of(kwargs)
        return request_key(record.call_id_of(kwargs), proxy_request, record.trace_id_of(kwargs))

    def _new_request(self, kwargs: Mapping[str, Any], now: int, on_proxy: bool) -> Request:
        return Request(
            call_id=record.call_id_of(kwargs) or "",
            received_ns=record.received_ns_of(kwargs) or now,
            requested_group=record.requested_group_of(kwargs),
            parent=record.parent_hint_of(kwargs) if on_proxy else caller_context(),
            attribution=record.attribution_of(kwargs),
        )

    @property
    def _active(self) -> bool:
        return self._spans is not None or self._metrics is not None

    @_contained
    def _attempt_started(self, kwargs: Mapping[str, Any], call_type: Any, in_process_only: bool = False) -> None:
        # The sync twins of the hooks matter only in-process (synchronous litellm.Router calls
        # fire no deployment hooks); on the proxy the async hooks already carry the same event.
        proxy_request = record.proxy_request_of(kwargs)
        if not self._active or (in_process_only and proxy_request is not None):
            return
        now = record.now_ns()
        key = self._key(kwargs, proxy_request)
        if key is None:
            return
        request, evicted = self._tracker.get_or_start(
            key, proxy_request, lambda: self._new_request(kwargs, now, proxy_request is not None), now)
        call_id = record.call_id_of(kwargs)
        open_attempt = request.open_attempt
        if open_attempt is not None:
            if open_attempt.call_id == call_id and key[0] != "proxy":
                return  # in-process: the pre-API-call twin of the deployment hook
            # The previous attempt ended without a failure hook (it failed inside a stream).
            end_attempt(open_attempt, now, "_OTHER")
        attempt = record.new_attempt(kwargs, len(request.attempts) + 1, call_type, now)
        attempt.call_id = call_id
        if attempt.api_base is None and attempt.deployment_model:
            attempt.api_base = _provider_api_base(attempt.deployment_model)
        request.attempts.append(attempt)
        if now - self._last_sweep_ns > _SWEEP_EVERY_NS:
            self._last_sweep_ns = now
            evicted += self._tracker.sweep(now)
        for abandoned in evicted:
            self._emit(abandoned)

    @_contained
    def _attempt_answered(self, request_data: Mapping[str, Any], response: Any) -> None:
        attempt = self._open_attempt(request_data)
        if attempt is not None:
            record.apply_response(attempt, response)
            attempt.end_ns = record.now_ns()

    @_contained
    def _attempt_failed(self, kwargs: Mapping[str, Any], exception: Any, end_time: Any,
                        in_process_only: bool = False) -> None:
        if in_process_only and record.proxy_request_of(kwargs) is not None:
            return
        end_ns = _now_or(end_time)
        exception = exception if exception is not None else kwargs.get("exception")
        attempt = self._open_attempt(kwargs)
        # A log event can arrive late; never let it close a later attempt than its own.
        if attempt is not None and attempt.start_ns <= end_ns:
            end_attempt(attempt, end_ns, record.error_type_of(exception))

    @_contained
    def _request_succeeded(self, kwargs: Mapping[str, Any], response: Any, start_time: Any, end_time: Any,
                           in_process_only: bool = False) -> None:
        proxy_request = record.proxy_request_of(kwargs)
        if not self._active or (in_process_only and proxy_request is not None):
            return
        request = self._finished_request(kwargs, proxy_request, _now_or(start_time))
        attempt = request.open_attempt
        if attempt is None:
            last = request.attempts[-1] if request.attempts else None
            if last is not None and last.error_type is None:
                attempt = last
            else:  # an answer no attempt hook announced (e.g. a cache hit)
                attempt = record.new_attempt(kwargs, len(request.attempts) + 1, kwargs.get("call_type"),
                                             _now_or(start_time))
                request.attempts.append(attempt)
        record.apply_success_event(request, attempt, kwargs, response, _now_or(end_time))
        if self._capturing_content():
            attempt.input_messages = record.input_messages_of(kwargs, self.settings.content_max_chars)
            attempt.output_messages = record.output_messages_of(response, self.settings.content_max_chars)
        zero_cost_reason = record.zero_cost_reason_of(kwargs, attempt.usage)
        if zero_cost_reason is not None:
            self._log(logging.WARNING, f"unpriced:{attempt.deployment_model}",
                      "litellm_cost_otel: litellm has no price for model %r (group %r, %s); its cost is recorded "
                      "as 0. Set input_cost_per_token / output_cost_per_token on the deployment.",
                      attempt.deployment_model, attempt.model_group, zero_cost_reason)
        self._emit(request)

    @_contained
    def _request_failed(self, request_data: Mapping[str, Any], exception: Any) -> None:
        if not self._active:
            return
        now = record.now_ns()
        request = self._finished_request(request_data, record.proxy_request_of(request_data), now)
        error_type = record.error_type_of(exception)
        if request.open_attempt is not None:
            end_attempt(request.open_attempt, now, error_type)
        request.end_ns = now
        request.error_type = error_type
        self._emit(request)

    def _finished_request(self, kwargs: Mapping[str, Any], proxy_request: Mapping[str, Any] | None,
                          now: int) -> Request:
        """The request's in-flight record, taken out of the tracker; a fresh one when no
        attempt hook announced it (a cache hit, an unknown model)."""
        key = self._key(kwargs, proxy_request)
        request = self._tracker.finish(key) if key is not None else None
        return request or self._new_request(kwargs, now, proxy_request is not None)

    def _open_attempt(self, kwargs: Mapping[str, Any]) -> Attempt | None:
        key = self._key(kwargs)
        request = self._tracker.get(key, record.now_ns()) if key is not None else None
        return request.open_attempt if request is not None else None

    def _capturing_content(self) -> bool:
        # The proxy's own redaction switch wins over the plugin's opt-in.
        return self.settings.capture_content and not getattr(litellm, "turn_off_message_logging", False)

    def _emit(self, request: Request) -> None:
        if getattr(litellm, "redact_user_api_key_info", False):  # the proxy's own redaction switch
            request.attribution = record.Attribution(tags=request.attribution.tags)
        if self._spans is not None:
            self._spans.emit(request)
        if self._metrics is not None:
            self._metrics.record(request)

    # --- for in-process users and tests ----------------------------------------------------

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        flushed = True
        for provider in (self.tracer_provider, self.meter_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                flushed = bool(flush(timeout_millis)) and flushed
        return flushed

    @property
    def inflight_requests(self) -> int:
        return len(self._tracker)
