"""The LiteLLM CustomLogger: a thin adapter from the proxy's hooks to readers -> lifecycle -> emit.

Hook order on the proxy (litellm 1.108.7, see docs/design.md):
  per attempt:  async_pre_call_deployment_hook, then
                async_post_call_success_deployment_hook (not for streams) or
                async_post_call_failure_deployment_hook (not for mid-stream failures);
  end:          async_log_success_event (background task, carries the cost) or
                async_post_call_failure_hook (the only reliable final-failure signal).
`async_log_failure_event` fires once per proxy request, on the first failed attempt, so it
only closes an attempt that no deployment hook closed (a failure inside a stream).

Each hook only queues its arguments (and, for an attempt, the router's facts of it); they are
read, and the lifecycle decides, shortly after on the event loop, with the spans and metrics
of the requests finished meanwhile. Every hook and every step contains its own errors: a
plugin bug is logged (rate-limited) and never fails or delays a request.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger

from . import __version__, readers
from .guard import BudgetExceededError, BudgetGuard, BudgetStoreUnavailableError, guard_from_settings
from .lifecycle import Lifecycle
from .metrics import MetricsRecorder
from .model import Answer, Attempt, Attribution, BudgetCheck, Message, Request, RequestKey, Success
from .settings import Settings, settings_from_proxy
from .spans import DirectSpanWriter, SpanWriter, caller_context, span_writer
from .telemetry import (
    INSTRUMENTATION_SCOPE,
    SCHEMA_URL,
    SCOPE,
    RateLimitedLog,
    build_meter_provider,
    build_tracer_provider,
    flush_at_proxy_shutdown,
)

log = logging.getLogger("litellm_cost_otel")
_Event = tuple[Callable[..., None], int, tuple[Any, ...]]  # (step, the hook's clock, the hook's arguments)
# Finished requests wait this long on the event loop, then their spans and metrics are made
# together: one after another the same code runs with warm caches, a third cheaper inside a
# busy proxy than made one by one between its requests (bench/probes/timed_plugin.py measures it).
_EMIT_DELAY_S = 0.1
_EMIT_BATCH = 32  # per turn of the event loop, so that requests in between are not held up
_MAX_PENDING = 4096  # queued events and finished requests beyond this are made at once: bounded state


def _emit_pending_at_exit(logger: weakref.ref[CostOtelLogger]) -> None:
    found = logger()
    if found is not None:
        found._emit_pending()


@functools.lru_cache(maxsize=256)
def _provider_api_base(deployment_model: str) -> str | None:
    """The provider's default endpoint, for `server.address` of deployments that set none."""
    try:
        found = litellm.get_api_base(model=deployment_model, optional_params={})
    except Exception:  # an unknown provider has no default endpoint
        return None
    return found if isinstance(found, str) else None


class CostOtelLogger(CustomLogger):
    """Per-request cost spans for the LiteLLM proxy and litellm.Router.

    On the proxy: `litellm_settings.callbacks: ["litellm_cost_otel.proxy_handler_instance"]`.
    In-process: `litellm.callbacks = [CostOtelLogger()]`.
    """

    def __init__(self, tracer_provider: Any = None, settings: Settings | None = None,
                 meter_provider: Any = None) -> None:
        super().__init__()
        self._log = RateLimitedLog(log)
        self.hook_errors = 0
        self.settings = settings or settings_from_proxy()
        self._limit = self.settings.max_value_chars
        self._lifecycle = Lifecycle(self.settings.max_inflight_requests, int(self.settings.request_timeout_s * 1e9),
                                    self._read_answer)
        self._metrics: MetricsRecorder | None = None
        self._events: collections.deque[_Event] = collections.deque()  # what the hooks saw, not read yet
        self._answered: dict[RequestKey, object] = {}  # the answer an attempt hook read, until the request ends
        self._lock = threading.Lock()
        self._pending: collections.deque[Request] = collections.deque()  # finished, spans not made yet
        self._emit_loop: asyncio.AbstractEventLoop | None = None  # where making them is scheduled
        self._spans: SpanWriter | DirectSpanWriter | None = None
        self.meter_provider, self.tracer_provider = meter_provider, tracer_provider
        try:
            self._set_up_telemetry()
        except Exception:  # a broken exporter set-up must not stop the gateway from starting
            log.error("litellm_cost_otel: telemetry set-up failed; the plugin stays inactive", exc_info=True)
            self._metrics = self._spans = None
        self._guard: BudgetGuard | None = None
        try:
            self._guard = guard_from_settings(self.settings, self._metrics,
                                              lambda key, message: self._log(logging.WARNING, key, message))
        except Exception:  # e.g. redis missing: the gateway starts, without the guard
            log.error("litellm_cost_otel: budget guard set-up failed; budgets are not enforced", exc_info=True)
        if self.active:
            flush_at_proxy_shutdown(self.force_flush)
            atexit.register(_emit_pending_at_exit, weakref.ref(self))  # before the providers' own exit flush

    def _set_up_telemetry(self) -> None:
        self.meter_provider = self.meter_provider or build_meter_provider(self.settings)
        if self.meter_provider is not None:
            self._metrics = MetricsRecorder(
                self.meter_provider.get_meter(INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL),
                self.settings.metrics_max_values_per_dimension,
                self.settings.metrics_team_dimension, self._lifecycle.__len__,
                getattr(self.meter_provider, "histograms", None))
        self.tracer_provider = self.tracer_provider or build_tracer_provider(
            self.settings, on_drop=self._metrics.spans_dropped if self._metrics else None)
        if self.tracer_provider is not None:
            self._spans = span_writer(self.tracer_provider, SCOPE, self.settings.attribution,
                                      self.settings.openinference)

    def _contained_error(self, step: str, error: Exception) -> None:
        self.hook_errors += 1
        if self._metrics is not None:
            self._metrics.hook_error(step.lstrip("_"))
        self._log(logging.ERROR, f"{step}:{type(error).__name__}",
                  "litellm_cost_otel: %s failed; the request is unaffected", step, exc_info=True)

    @property
    def active(self) -> bool:
        return self._spans is not None or self._metrics is not None

    # --- before the request is routed: the budget guard (BudgetGuardedLogger's hook) -----

    async def _check_budgets(self, data: object, call_type: Any) -> Exception | None:
        """The guard's verdict; its own errors are contained like every hook's."""
        assert self._guard is not None
        request: Request | None = None
        try:
            args = readers.hook_args(data)
            key = readers.request_key(args)
            if key is None or not args.on_proxy:
                return None
            now = time.time_ns()
            with self._lock:
                request, evicted = self._lifecycle.request_received(key, args.proxy_request,
                                                                    self._new_request(args, now), now)
                for finished in evicted:
                    self._emit(finished)
            request.budget = await self._guard.check(request, args.kwargs, readers.operation_of(call_type),
                                                     readers.client_trace_id_of(args))
        except (BudgetExceededError, BudgetStoreUnavailableError) as refusal:
            if request is not None and isinstance(refusal, BudgetExceededError):
                request.budget = BudgetCheck("", (), 0, refused_by=refusal.param)
            return refusal
        except Exception as error:  # as in _attempt_hook: a plugin bug never fails the request
            self._contained_error("async_pre_call_hook", error)
        return None

    # --- hooks: each queues its arguments, read when the queue is worked through -----------

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> None:
        self._attempt_hook(kwargs, call_type)

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: dict[str, Any]) -> None:
        self._attempt_hook(kwargs, None, in_process_only=True)

    async def async_post_call_success_deployment_hook(self, request_data: dict[str, Any], response: Any,
                                                      call_type: Any) -> None:
        self._answer_hook(request_data, response)

    async def async_post_call_failure_deployment_hook(self, request_data: Mapping[str, Any], exception: Exception,
                                                      call_type: Any, fallback_depth: int | None = None) -> None:
        self._failure_hook(CostOtelLogger._attempt_failed, request_data, exception, None)

    async def async_log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._failure_hook(CostOtelLogger._attempt_failed, kwargs, None, end_time)

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._failure_hook(CostOtelLogger._attempt_failed, kwargs, None, end_time, in_process_only=True)

    async def async_log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._success_hook(kwargs, response_obj, start_time, end_time)

    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._success_hook(kwargs, response_obj, start_time, end_time, in_process_only=True)

    async def async_post_call_failure_hook(self, request_data: dict[str, Any], original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> None:
        self._failure_hook(CostOtelLogger._request_failed, request_data, original_exception, None)

    # --- the queue: what the hooks saw, worked through in order shortly after -----------------
    # A hook runs between the proxy's own work, with cold caches: reading there costs about
    # four times what the same reading costs when many requests' events are worked through one
    # after another (bench/results.md). So a hook queues what it was given and the clock, and
    # reads at once only what must not wait: the router's facts of an attempt (it rewrites them
    # in place for the next one), and whatever the proxy made for this one hook (the answer,
    # the success event's logging payload, an exception and its traceback). Kept, those young
    # objects would outlive their request by the queue's 0.1 s, long enough to reach the
    # garbage collector's oldest generation and bring the proxy's next full collection nearer.

    def _attempt_hook(self, kwargs: object, call_type: Any, in_process_only: bool = False) -> None:
        if not self.active:
            return
        try:
            now = time.time_ns()
            args = readers.hook_args(kwargs)
            if in_process_only and args.on_proxy:
                return
            self._queue(CostOtelLogger._attempt_started, now,
                        (readers.kept_args(args), readers.new_attempt(args, call_type, now, self._limit),
                         None if args.on_proxy else caller_context()))
        except Exception as error:  # containing every error is the point: a plugin bug never fails a request
            self._contained_error("attempt_started", error)

    def _answer_hook(self, request_data: object, response: Any) -> None:
        if not self.active:
            return
        try:
            now = time.time_ns()
            key = readers.request_key(readers.hook_args(request_data))
            if key is None:
                return
            if len(self._answered) >= _MAX_PENDING:  # bounded: a request that never ends leaves its entry
                self._answered.clear()
            self._answered[key] = response  # the success event usually brings the same object
            self._queue(CostOtelLogger._attempt_answered, now, (key, self._read_answer(response)))
        except Exception as error:  # as in _attempt_hook
            self._contained_error("attempt_answered", error)

    def _failure_hook(self, step: Callable[..., None], kwargs: object, exception: Any, end_time: Any,
                      in_process_only: bool = False) -> None:
        if not self.active:
            return
        try:
            now = time.time_ns()
            args = readers.hook_args(kwargs)
            if in_process_only and args.on_proxy:
                return
            exception = exception if exception is not None else args.kwargs.get("exception")
            if step is CostOtelLogger._request_failed and self._answered:
                key = readers.request_key(args)
                if key is not None:
                    self._answered.pop(key, None)  # (an answer a guardrail then refused)
            self._queue(step, now, (readers.kept_args(args), readers.error_type_of(exception),
                                    readers.time_ns_of(end_time), None if args.on_proxy else caller_context()))
        except Exception as error:  # as in _attempt_hook
            self._contained_error(step.__name__, error)

    def _success_hook(self, kwargs: object, response: Any, start_time: Any, end_time: Any,
                      in_process_only: bool = False) -> None:
        if not self.active:
            return
        try:
            now = time.time_ns()
            args = readers.hook_args(kwargs)
            if in_process_only and args.on_proxy:
                return
            success = readers.success_of(args, response, start_time, end_time, self._limit)
            key = readers.request_key(args)
            # The answer read once: the attempt's hook read it already when this is the same object.
            seen = self._answered.pop(key, None) if key is not None else None
            answer = Answer() if seen is response else self._read_answer(response)
            success.response = answer
            captured: tuple[tuple[Message, ...], tuple[Message, ...]] = ((), ())
            if self.settings.capture_content and not getattr(litellm, "turn_off_message_logging", False):
                captured = (readers.input_messages_of(args.kwargs, self.settings.content_max_chars),
                            readers.output_messages_of(response, self.settings.content_max_chars))
            zero_cost_reason = readers.zero_cost_reason_of(args.kwargs, answer.usage or success.logged_usage)
            self._queue(CostOtelLogger._request_succeeded, now,
                        (readers.kept_args(args), key, success, captured, zero_cost_reason,
                         None if args.on_proxy else caller_context()))
        except Exception as error:  # as in _attempt_hook
            self._contained_error("request_succeeded", error)

    def _read_answer(self, response: object) -> Answer:
        """What an answer says of its attempt; an Answer read in a hook already, as it is."""
        return response if isinstance(response, Answer) else readers.answer_of(response, self._limit)

    def _queue(self, step: Callable[..., None], now: int, args: tuple[Any, ...]) -> None:
        self._events.append((step, now, args))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop on this thread (synchronous in-process calls)
            loop = None
        if loop is None or len(self._events) + len(self._pending) >= _MAX_PENDING:
            self._emit_pending()  # at once: without a loop nothing would work the queue through
            return
        if self._guard is not None:
            self._work_through()  # the guard's checks and settlements see every earlier event, on the loop
        if self._emit_loop is not loop:  # nothing scheduled on this loop yet (or that loop has ended)
            self._emit_loop = loop
            loop.call_later(_EMIT_DELAY_S, self._emit_pending, _EMIT_BATCH)

    def _work_through(self, limit: int | None = None) -> None:
        """The queued events, in order (`limit` of them; all without one): read, then let the
        lifecycle decide; the requests they finish wait in `_pending` for their spans."""
        with self._lock:  # the lifecycle's records are changed by one thread at a time
            events = self._events
            for _ in range(len(events) if limit is None else min(limit, len(events))):
                step, now, args = events.popleft()
                try:
                    step(self, now, *args)
                except Exception as error:  # a plugin bug never stops the events after it
                    self._contained_error(step.__name__, error)

    # --- steps: read, then let the lifecycle decide, then emit what it finished -------------
    # The sync twins of the hooks matter only in-process (synchronous litellm.Router calls fire
    # no deployment hooks); on the proxy the async hooks already carry the same event.

    def _new_request(self, args: readers.HookArgs, now: int, caller: object = None) -> Callable[[], Request]:
        """`caller`: in-process, the caller's span context, taken in the hook (not the batch's)."""
        def make() -> Request:
            request = readers.new_request(args, now, self._limit)
            if not args.on_proxy:
                request.parent = caller
            return request
        return make

    def _attempt_started(self, now: int, args: readers.HookArgs, attempt: Attempt, caller: object) -> None:
        key = readers.request_key(args)
        if key is None:
            return
        attempt.call_id = readers.call_id_of(args)
        if attempt.api_base is None and attempt.deployment_model:
            attempt.api_base = _provider_api_base(attempt.deployment_model)
        for finished in self._lifecycle.attempt_started(key, args.proxy_request,
                                                        self._new_request(args, now, caller), attempt, now):
            self._emit(finished)

    def _attempt_answered(self, now: int, key: RequestKey, answer: Answer) -> None:
        self._lifecycle.attempt_answered(key, answer, now)

    def _attempt_failed(self, now: int, args: readers.HookArgs, error_type: str, end_ns: int | None,
                        caller: object) -> None:
        key = readers.request_key(args)
        if key is not None:
            self._lifecycle.attempt_failed(key, error_type, end_ns, now)

    def _request_succeeded(self, now: int, args: readers.HookArgs, key: RequestKey | None, success: Success,
                           captured: tuple[tuple[Message, ...], tuple[Message, ...]],
                           zero_cost_reason: str | None, caller: object) -> None:
        request = self._lifecycle.request_succeeded(
            key, self._new_request(args, now, caller),
            lambda start: readers.new_attempt(args, args.kwargs.get("call_type"), start, self._limit), success, now)
        attempt = request.attempts[-1]
        if captured[0] or captured[1]:
            attempt.input_messages, attempt.output_messages = captured
        if zero_cost_reason is not None:
            self._log(logging.WARNING, f"unpriced:{attempt.deployment_model}",
                      "litellm_cost_otel: litellm has no price for model %r (group %r, %s); its cost is recorded "
                      "as 0. Set input_cost_per_token / output_cost_per_token on the deployment.",
                      attempt.deployment_model, attempt.model_group, zero_cost_reason)
        self._emit(request)

    def _request_failed(self, now: int, args: readers.HookArgs, error_type: str, end_ns: int | None,
                        caller: object) -> None:
        self._emit(self._lifecycle.request_failed(readers.request_key(args), self._new_request(args, now, caller),
                                                  error_type, now))

    def _emit(self, request: Request) -> None:
        """A finished request: its budget settled, its spans and metrics made with the batch's."""
        if self._guard is not None:
            try:
                self._guard.settle(request)
            except Exception as error:  # the spans still go out
                self._contained_error("budget_settle", error)
        if getattr(litellm, "redact_user_api_key_info", False):  # the proxy's own redaction switch
            request.attribution = Attribution(tags=request.attribution.tags)
        self._pending.append(request)

    def _emit_pending(self, limit: int | None = None) -> None:
        """Work the queued events through, then make the finished requests' spans and metrics
        (`limit` requests, and 4 x `limit` events, then the rest on the loop's next turn; all
        of them without a limit, as when flushing)."""
        if limit is not None:
            self._emit_loop = None  # (set again below while some are left)
        try:
            self._work_through(None if limit is None else 4 * limit)
        except Exception as error:  # as in _attempt_hook (each step contains its own)
            self._contained_error("work_through", error)
        pending = self._pending
        for _ in range(len(pending) if limit is None else limit):
            try:
                request = pending.popleft()
            except IndexError:  # all done (a flush on another thread may have taken some)
                break
            try:
                if self._spans is not None:
                    self._spans.emit(request)
                if self._metrics is not None:
                    self._metrics.record(request)
            except Exception as error:  # as in _attempt_hook
                self._contained_error("emit", error)
        if limit is not None and (pending or self._events):
            self._emit_loop = asyncio.get_running_loop()
            self._emit_loop.call_soon(self._emit_pending, limit)

    # --- for in-process users and tests ----------------------------------------------------

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self._emit_pending()
        flushed = True
        for provider in (self.tracer_provider, self.meter_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                flushed = bool(flush(timeout_millis)) and flushed
        return flushed

    @property
    def inflight_requests(self) -> int:
        self._work_through()
        return len(self._lifecycle)


class ProxyLogger(CostOtelLogger):
    """The plugin as the proxy registers it. There the async hooks carry every event, so the
    sync twins litellm also calls (on its threads, per attempt and per request) are
    CustomLogger's own no-ops: about 17 µs per request less inside a busy proxy."""

    log_pre_api_call = CustomLogger.log_pre_api_call
    log_success_event = CustomLogger.log_success_event
    log_failure_event = CustomLogger.log_failure_event


class BudgetGuardedLogger(ProxyLogger):
    """The plugin with budgets configured. The proxy calls `async_pre_call_hook` only on a
    class that defines it, and defining it makes the proxy walk its callbacks on every request:
    so only this class has it, and `proxy_handler()` picks it only when budgets exist."""

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict[str, Any],
                                  call_type: Any) -> None:
        if self._guard is None:
            return None
        refusal = await self._check_budgets(data, call_type)
        if refusal is not None:
            raise refusal  # the proxy answers the client with it (429, or 503 under `deny`)
        return None


def proxy_handler(settings: Settings | None = None) -> CostOtelLogger:
    """The instance the proxy registers (`litellm_cost_otel.proxy_handler_instance`)."""
    settings = settings or settings_from_proxy()
    return (BudgetGuardedLogger if settings.budgets else ProxyLogger)(settings=settings)
