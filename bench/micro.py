"""Micro-benchmark of the plugin's own per-request work, without the proxy.

Feeds the plugin's hooks the kwargs the proxy passes for one successful request
(`async_pre_call_deployment_hook` -> `async_post_call_success_deployment_hook` ->
`async_log_success_event`, litellm_cost_otel.devtools.hook_kwargs), with a real SDK TracerProvider
(BatchSpanProcessor, an exporter that discards) and a real MeterProvider (in-memory reader).
Then times each step of that work on its own: reading and lifecycle, attribute mapping, span
creation, metrics; and, off the request path, the OTLP encoding the export thread does.

    python -m bench.micro [--iterations 20000] [--repeats 5] [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import pstats
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import litellm
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode_spans
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from litellm_cost_otel import attributes, readers
from litellm_cost_otel.devtools.hook_kwargs import ProxyHooks, proxy_hooks
from litellm_cost_otel.encoding import SpanEncoder
from litellm_cost_otel.histograms import OwnMeterProvider
from litellm_cost_otel.lifecycle import Lifecycle
from litellm_cost_otel.logger import CostOtelLogger
from litellm_cost_otel.metrics import MetricsRecorder
from litellm_cost_otel.model import Request
from litellm_cost_otel.settings import Settings
from litellm_cost_otel.spans import OwnTracerProvider, span_writer
from litellm_cost_otel.telemetry import INSTRUMENTATION_SCOPE, SCOPE

from . import harness

CALL_TYPE = "acompletion"


class DiscardingExporter(SpanExporter):
    """Takes every batch and drops it: the SDK's own work stays, the network goes."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def hooks_for(number: int) -> ProxyHooks:
    return proxy_hooks(call_id=f"call-{number}")


def model_response() -> Any:
    return litellm.ModelResponse(choices=[{"message": {"role": "assistant", "content": "The answer."},
                                           "finish_reason": "stop"}],
                                 usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})




def discarding_tracer_provider(early: bool = True) -> OwnTracerProvider:
    """The plugin's own kind of provider, with early encoding as for OTLP/gRPC (so its spans
    take the path they take on the proxy)."""
    provider = OwnTracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
    if early:
        provider.span_encoder = SpanEncoder(provider.resource, SCOPE)
    return provider


class DiscardingMetricExporter(MetricExporter):
    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def discarding_meter_provider() -> OwnMeterProvider:
    """The plugin's own meter provider (its own histograms), as build_meter_provider makes it."""
    return OwnMeterProvider([DiscardingMetricExporter()], Resource.create(), SCOPE)


# --- the whole request, through the hooks ----------------------------------------------------

HOOK_NAMES = ("async_pre_call_deployment_hook", "async_post_call_success_deployment_hook", "async_log_success_event")
MADE_AFTER = "spans and metrics, made after the hooks"  # the logger's deferred batches
BATCH = 32  # requests per batch, as the logger makes them on the proxy's event loop


async def time_hooks(plugin: CostOtelLogger, response: Any, iterations: int) -> dict[str, float]:
    """Mean ns per request for each hook, building each request's arguments outside the timing."""
    totals = dict.fromkeys((*HOOK_NAMES, MADE_AFTER), 0)
    clock = time.perf_counter_ns
    for number in range(iterations):
        hooks = hooks_for(number)
        t0 = clock()
        await plugin.async_pre_call_deployment_hook(hooks.start, CALL_TYPE)
        t1 = clock()
        await plugin.async_post_call_success_deployment_hook(hooks.start, response, CALL_TYPE)
        t2 = clock()
        await plugin.async_log_success_event(hooks.success, response, hooks.start_time, hooks.end_time)
        t3 = clock()
        totals["async_pre_call_deployment_hook"] += t1 - t0
        totals["async_post_call_success_deployment_hook"] += t2 - t1
        totals["async_log_success_event"] += t3 - t2
        if number % BATCH == BATCH - 1 or number == iterations - 1:  # what the event loop would run now
            t4 = clock()
            plugin._emit_pending(BATCH)
            totals[MADE_AFTER] += clock() - t4
    if plugin.hook_errors or plugin.inflight_requests:
        raise RuntimeError(f"the plugin did not take the requests cleanly: {plugin.hook_errors} hook errors, "
                           f"{plugin.inflight_requests} left in flight")
    return {name: total / iterations for name, total in totals.items()}


# --- the steps, one at a time ----------------------------------------------------------------

STEP_NAMES = ("readers", "attributes", "spans", "metrics")
LIMIT = Settings().max_value_chars


def extract_request(lifecycle: Lifecycle, hooks: ProxyHooks, response: Any) -> Request:
    """What the hooks read and decide for one request (readers and lifecycle)."""
    start, success = readers.hook_args(hooks.start), readers.hook_args(hooks.success)
    key = readers.request_key(start)
    assert key is not None
    now = time.time_ns()
    attempt = readers.new_attempt(start, CALL_TYPE, now, LIMIT)
    lifecycle.attempt_started(key, start.proxy_request, lambda: readers.new_request(start, now, LIMIT), attempt, now)
    lifecycle.attempt_answered(key, response, time.time_ns())
    now = time.time_ns()
    return lifecycle.request_succeeded(
        key, lambda: readers.new_request(success, now, LIMIT), lambda at: readers.new_attempt(success, None, at, LIMIT),
        readers.success_of(success, response, hooks.start_time, hooks.end_time, LIMIT), now)


def map_attributes(request: Request, attribution: frozenset[str]) -> None:
    """The attribute mapping of one request's spans (litellm_cost_otel.attributes)."""
    attributes.request_span_name(request)
    attributes.request_attributes(request, attribution)
    for attempt in request.attempts:
        attributes.attempt_span_name(attempt)
        attributes.attempt_attributes(attempt)


def time_steps(iterations: int, settings: Settings, response: Any) -> dict[str, float]:
    """Mean ns per request of each step. `spans` is SpanWriter.emit, which maps the
    attributes itself: the report subtracts the mapping to show span creation alone."""
    writer = span_writer(discarding_tracer_provider(), SCOPE, settings.attribution, settings.openinference)
    meter_provider = discarding_meter_provider()
    recorder = MetricsRecorder(meter_provider.get_meter(INSTRUMENTATION_SCOPE),
                               settings.metrics_max_values_per_dimension, settings.metrics_team_dimension,
                               histograms=meter_provider.histograms)
    lifecycle = Lifecycle(settings.max_inflight_requests, int(settings.request_timeout_s * 1e9),
                          functools.partial(readers.answer_of, limit=LIMIT))
    totals = dict.fromkeys(STEP_NAMES, 0)
    clock = time.perf_counter_ns
    for number in range(iterations):
        hooks = hooks_for(number)
        t0 = clock()
        request = extract_request(lifecycle, hooks, response)
        t1 = clock()
        map_attributes(request, settings.attribution)
        t2 = clock()
        writer.emit(request)
        t3 = clock()
        recorder.record(request)
        t4 = clock()
        totals["readers"] += t1 - t0
        totals["attributes"] += t2 - t1
        totals["spans"] += t3 - t2
        totals["metrics"] += t4 - t3
    return {name: total / iterations for name, total in totals.items()}


def varied_requests_spans(settings: Settings, requests: int, encoder: SpanEncoder | None) -> list[Any]:
    """The spans of `requests` successful requests whose ids, token counts and costs differ,
    as on a real proxy (identical requests would flatter the encoder's cache): early-encoded
    by `encoder`, or ReadableSpans without one."""
    exporter = InMemorySpanExporter()
    provider = OwnTracerProvider()
    provider.span_encoder = encoder
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    writer = span_writer(provider, SCOPE, settings.attribution, settings.openinference)
    lifecycle = Lifecycle(settings.max_inflight_requests, int(settings.request_timeout_s * 1e9),
                          functools.partial(readers.answer_of, limit=LIMIT))
    for number in range(requests):
        prompt, completion = 5 + number * 7 % 400, 5 + number * 13 % 300
        response = litellm.ModelResponse(
            id=f"chatcmpl-{number}", choices=[{"message": {"role": "assistant", "content": "The answer."},
                                               "finish_reason": "stop"}],
            usage={"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
        hooks = hooks_for(number)
        hooks.success["response_cost"] = prompt * 1e-7 + completion * 3e-7
        writer.emit(extract_request(lifecycle, hooks, response))
    return list(exporter.get_finished_spans())


def time_encoding(spans: list[Any], requests: int, iterations: int, encoder: SpanEncoder | None) -> float:
    """Mean ns per request to make the OTLP export request's bytes, in batches of 512 spans as
    the export thread does: joining early-encoded spans (`encoder`), or the library encoding
    ReadableSpans."""
    batches = [spans[start:start + 512] for start in range(0, len(spans), 512)]
    rounds = max(1, iterations // requests)
    clock = time.perf_counter_ns
    t0 = clock()
    for _ in range(rounds):
        for batch in batches:
            encoder.export_request(batch) if encoder is not None else library_encode_spans(batch).SerializeToString()
    return (clock() - t0) / (rounds * requests)


# --- main ------------------------------------------------------------------------------------

@dataclass
class Results:
    hooks: dict[str, float]  # median over repeats, ns per request
    steps: dict[str, float]
    encoding: float  # ns per request, the plugin's exporter joining early-encoded spans
    library_encoding: float  # the library's encode_spans of the same spans as ReadableSpans
    spans_per_request: int


def measure(iterations: int, repeats: int) -> Results:
    settings = Settings()  # the defaults, as on a proxy that sets nothing
    response = model_response()
    plugin = CostOtelLogger(tracer_provider=discarding_tracer_provider(), settings=settings,
                            meter_provider=discarding_meter_provider())
    encoded_requests = 1024
    encoder = SpanEncoder(Resource.create(), SCOPE)
    early_spans = varied_requests_spans(settings, encoded_requests, encoder)
    spans = varied_requests_spans(settings, encoded_requests, None)
    # Move everything imported so far (litellm is a large heap) out of the collector's reach:
    # otherwise a full collection, ~0.1 s over that heap, lands in whichever step happens to
    # allocate at that moment. The proxy's own collections are measured by `make bench`.
    gc.collect()
    gc.freeze()
    warmup = max(iterations // 10, 100)
    asyncio.run(time_hooks(plugin, response, warmup))
    time_steps(warmup, settings, response)
    hook_runs, step_runs, encode_runs, library_runs = [], [], [], []
    for repeat in range(repeats):
        hook_runs.append(asyncio.run(time_hooks(plugin, response, iterations)))
        step_runs.append(time_steps(iterations, settings, response))
        encode_runs.append(time_encoding(early_spans, encoded_requests, iterations, encoder))
        library_runs.append(time_encoding(spans, encoded_requests, iterations, None))
        print(f"repeat {repeat + 1}/{repeats}: {sum(hook_runs[-1].values()) / 1000:.1f} µs per request", flush=True)

    def medians(runs: list[dict[str, float]]) -> dict[str, float]:
        return {name: statistics.median(run[name] for run in runs) for name in runs[0]}

    return Results(medians(hook_runs), medians(step_runs), statistics.median(encode_runs),
                   statistics.median(library_runs), len(spans) // encoded_requests)


def report(results: Results, iterations: int, repeats: int, quick: bool) -> str:
    whole = sum(results.hooks.values())
    steps = results.steps
    span_creation = steps["spans"] - steps["attributes"]
    rest = whole - steps["readers"] - steps["spans"] - steps["metrics"]

    def row(name: str, ns: float, note: str = "") -> str:
        return f"| {name} | {ns / 1000:.1f} | {ns / whole:.0%} | {note} |"

    lines = ["## Micro-benchmark of the plugin's per-request work (`make bench-micro`)", ""]
    if quick:
        lines += ["**Quick smoke run (`--quick`).**", ""]
    lines += [
        f"- Run: {harness.utc_now()}; {harness.versions()}; {harness.machine()}",
        f"- One successful request ({results.spans_per_request} spans) through the three hooks, default settings, "
        f"{iterations} requests x {repeats} repeats, medians of the repeat means; no proxy",
        "",
        "| work | µs/request | share | note |",
        "|---|---|---|---|",
        row("**whole request through the hooks**", whole, "what the proxy's event loop pays"),
        *(row(f"hook `{name}`", results.hooks[name]) for name in HOOK_NAMES),
        row(MADE_AFTER, results.hooks[MADE_AFTER], f"in batches of {BATCH}, as on the proxy's event loop"),
        row("reading and lifecycle (`readers`, `lifecycle`)", steps["readers"]),
        row("attribute mapping (`attributes`)", steps["attributes"]),
        row("span creation (`spans`, without the mapping)", span_creation,
            "sampler, ids, contexts, OTLP encoding of each span, the batch processor's queue"),
        row("metrics (`metrics`)", steps["metrics"], "histograms aggregated in-process (`histograms`)"),
        row("the rest: hooks, error containment", rest, "the whole less the four steps"),
        "",
        f"Off the request path, on the export thread (it shares the GIL with the event loop): the OTLP export "
        f"request around one request's early-encoded spans {results.encoding / 1000:.1f} µs (the library's "
        f"`encode_spans` of the same spans as ReadableSpans: {results.library_encoding / 1000:.1f} µs), in batches "
        "of 512 spans of requests with differing ids, token counts and costs; gRPC send not included.",
    ]
    return "\n".join(lines)


def profile(iterations: int) -> None:
    settings = Settings()
    plugin = CostOtelLogger(tracer_provider=discarding_tracer_provider(), settings=settings,
                            meter_provider=discarding_meter_provider())
    response = model_response()
    asyncio.run(time_hooks(plugin, response, max(iterations // 10, 100)))
    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, time_hooks(plugin, response, iterations))
    print(f"\ncProfile of {iterations} requests through the hooks, top functions by own time:")
    pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(25)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20_000, help="requests per repeat (default 20000)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; medians are reported (default 5)")
    parser.add_argument("--quick", action="store_true", help="2000 requests x 3 repeats")
    parser.add_argument("--profile", action="store_true", help="also run under cProfile and print the top functions")
    parser.add_argument("--output", type=Path, default=harness.RESULTS, help="results file (default bench/results.md)")
    args = parser.parse_args(argv)
    iterations, repeats = (2000, 3) if args.quick else (args.iterations, args.repeats)
    if iterations < 1 or repeats < 1:
        parser.error("iterations and repeats must be positive")
    print(f"{harness.versions()}; {harness.machine()}")
    text = report(measure(iterations, repeats), iterations, repeats, args.quick)
    harness.write_section("micro", text, args.output)
    print("\n" + text + f"\n\nwritten to {args.output}")
    if args.profile:
        profile(iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
