"""The plugin as it ships, with the CPU time of its own work counted inside the proxy
(`--configs none,plugin,plugin-timed`): each hook (the thread's CPU time around it: the
plugin's hooks never suspend; of that, the garbage collections that ran inside it), the
deferred work (reading what the hooks queued, making spans and metrics), each span export
(on the batch processor's thread: encoding, gRPC) and each metric collection and export (on
the periodic reader's thread).
The totals go to the JSON file named by BENCH_PLUGIN_CPU four times a second (the proxy
dies by SIGTERM).

Its share of the same process's CPU per request does not depend on how fast that process
happens to run, which on a noisy machine moves throughput by more than the plugin costs.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from litellm_cost_otel.encoding import CachingOTLPSpanExporter
from litellm_cost_otel.logger import proxy_handler

_totals = {"hooks_ns": 0, "span_export_ns": 0, "metrics_ns": 0, "success_events": 0}
_lock = threading.Lock()
_clock = time.thread_time_ns


def _add(name: str, ns: int) -> None:
    with _lock:
        _totals[name] = _totals.get(name, 0) + ns


def _timed_method(owner: type, name: str, total: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = _clock()
        try:
            return original(self, *args, **kwargs)
        finally:
            _add(total, _clock() - started)

    setattr(owner, name, timed)


_in_hook = [False]  # on the event loop's thread, where the async hooks run
_collection_started = [0]


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    """The collections that run inside a hook (triggered by its allocations) are in its time."""
    if not _in_hook[0]:
        return
    if phase == "start":
        _collection_started[0] = _clock()
    else:
        _add("gc_in_hooks_ns", _clock() - _collection_started[0])


def _timed_hook(owner: type, name: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = _clock()
        _in_hook[0] = True
        try:
            return await original(self, *args, **kwargs)
        finally:
            _in_hook[0] = False
            spent = _clock() - started
            _add("hooks_ns", spent)
            _add(name, spent)
            if name == "async_log_success_event":
                _add("success_events", 1)

    setattr(owner, name, timed)


def _write_totals(path: str) -> None:
    while True:
        with _lock:
            text = json.dumps(_totals)
        partial = path + ".partial"
        with open(partial, "w") as file:
            file.write(text)
        os.replace(partial, path)
        time.sleep(0.25)


proxy_handler_instance = proxy_handler()
_plugin_class = type(proxy_handler_instance)
for _hook in ("async_pre_call_deployment_hook", "async_post_call_success_deployment_hook",
              "async_post_call_failure_deployment_hook", "async_log_success_event", "async_log_failure_event",
              "async_post_call_failure_hook"):
    _timed_hook(_plugin_class, _hook)
for _hook in ("log_pre_api_call", "log_success_event", "log_failure_event"):  # litellm's threads
    _timed_method(_plugin_class, _hook, "hooks_ns")
if hasattr(_plugin_class, "_emit_pending"):
    _timed_method(_plugin_class, "_emit_pending", "deferred_emit_ns")
gc.callbacks.append(_on_collection)
_timed_method(CachingOTLPSpanExporter, "export", "span_export_ns")
_timed_method(PeriodicExportingMetricReader, "collect", "metrics_ns")  # (the plugin's readers are its subclass)
if os.environ.get("BENCH_PLUGIN_CPU"):
    threading.Thread(target=_write_totals, args=(os.environ["BENCH_PLUGIN_CPU"],), daemon=True,
                     name="bench-plugin-cpu").start()
