"""Records the plugin's metrics from finished request records.

Instruments follow the GenAI conventions where they exist (names, units, advised buckets,
`gen_ai.token.type`); cost, attempts, retries and fallbacks are this plugin's own. Every
dimension takes only bounded values: model groups are the configured ones (or "_unknown",
never a client's model name), request models only where the configuration fixes them. Each
is also capped: past `max_values` distinct values a dimension reports "_OTHER".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

from . import attributes as a
from .histograms import Dimensions, Histograms, series_key
from .model import Attempt, Request

TOKEN_USAGE = gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
OPERATION_DURATION = gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
TIME_TO_FIRST_CHUNK = gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
# This plugin's own (no convention has them).
COST = "litellm.request.cost"
REQUESTS = "litellm.requests"
ATTEMPTS = "litellm.attempts"
RETRIES = "litellm.retries"
FALLBACKS = "litellm.fallbacks"
SPANS_DROPPED = "litellm_cost_otel.spans.dropped"
HOOK_ERRORS = "litellm_cost_otel.hook.errors"
INFLIGHT = "litellm_cost_otel.requests.inflight"
BUDGET_SPEND = "litellm_cost_otel.budget.spend"
BUDGET_REFUSALS = "litellm_cost_otel.budget.refusals"
BUDGET_STORE_ERRORS = "litellm_cost_otel.budget.store_errors"
METRIC_NAMES = (TOKEN_USAGE, OPERATION_DURATION, TIME_TO_FIRST_CHUNK, COST, REQUESTS, ATTEMPTS, RETRIES,
                FALLBACKS, SPANS_DROPPED, HOOK_ERRORS, INFLIGHT, BUDGET_SPEND, BUDGET_REFUSALS, BUDGET_STORE_ERRORS)

# Advised bucket boundaries of the GenAI conventions.
TOKEN_BUCKETS: list[float] = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
SECONDS_BUCKETS: list[float] = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
OTHER = "_OTHER"


class _Capped:
    """The distinct values one dimension may take; later newcomers become "_OTHER"."""

    def __init__(self, max_values: int) -> None:
        self._max_values = max_values
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self._max_values:
                self._seen.add(value)
                return value
        return OTHER


class _Totals:
    """Running sums per dimension set, reported by an observable counter at collection time.

    On the request path this is one dict update, several times cheaper than a synchronous SDK
    counter's `add` (attribute hashing, view matching, aggregation); the exported series are
    the same cumulative sums. The key space is bounded by the capped dimensions."""

    def __init__(self) -> None:
        self._sums: dict[frozenset[tuple[str, Any]], float] = {}
        self._lock = threading.Lock()  # the sync hooks run on litellm's worker threads

    def add(self, value: float, dimensions: Mapping[str, Any]) -> None:
        key = series_key(dimensions)
        with self._lock:
            self._sums[key] = self._sums.get(key, 0) + value

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            sums = list(self._sums.items())
        return [Observation(value, dict(key)) for key, value in sums]


class MetricsRecorder:
    def __init__(self, meter: Meter, max_values: int, team_dimension: bool,
                 inflight: Callable[[], int] = lambda: 0, histograms: Histograms | None = None) -> None:
        self._team_dimension = team_dimension
        self._memo: dict[tuple[tuple[str, Any], ...], Dimensions] = {}
        self._capped = {name: _Capped(max_values) for name in (
            a.MODEL_GROUP, a.SERVED_MODEL_GROUP, a.GEN_AI_REQUEST_MODEL, a.GEN_AI_PROVIDER_NAME, a.ERROR_TYPE,
            a.TEAM_ALIAS, a.GEN_AI_OPERATION_NAME)}

        def histogram(name: str, unit: str, description: str, boundaries: list[float]) -> Any:
            # The plugin's own aggregation on its own provider (histograms.py), the SDK's on any other.
            if histograms is not None:
                return histograms.create(name, unit, description, boundaries)
            return meter.create_histogram(name, unit=unit, description=description,
                                          explicit_bucket_boundaries_advisory=boundaries)

        self._token_usage = histogram(TOKEN_USAGE, "{token}", "Number of input and output tokens used",
                                      TOKEN_BUCKETS)
        self._duration = histogram(OPERATION_DURATION, "s", "GenAI operation duration (one per deployment attempt)",
                                   SECONDS_BUCKETS)
        self._time_to_first_chunk = histogram(TIME_TO_FIRST_CHUNK, "s",
                                              "Time to the first chunk of a streamed response", SECONDS_BUCKETS)
        self._cost, self._requests, self._attempts, self._retries, self._fallbacks = (
            _Totals(), _Totals(), _Totals(), _Totals(), _Totals())
        # Budget names come from the configuration: bounded by it (and capped all the same).
        self._budget_name = _Capped(max_values)
        self._budget_spend, self._budget_refusals = _Totals(), _Totals()
        for name, totals, unit, description in (
            (COST, self._cost, "USD", "Cost of proxied requests in US dollars"),
            (REQUESTS, self._requests, "{request}", "Proxied requests"),
            (ATTEMPTS, self._attempts, "{attempt}", "Deployment attempts"),
            (RETRIES, self._retries, "{retry}", "Attempts that retried the same model group after a failure"),
            (FALLBACKS, self._fallbacks, "{hop}", "Fallback hops from one model group to another"),
            (BUDGET_SPEND, self._budget_spend, "USD", "Cost settled on each budget (every request it applied to)"),
            (BUDGET_REFUSALS, self._budget_refusals, "{request}", "Requests a budget refused"),
        ):
            meter.create_observable_counter(name, callbacks=[totals.observe], unit=unit, description=description)
        self._spans_dropped = meter.create_counter(
            SPANS_DROPPED, unit="{span}", description="Spans the plugin could not export")
        self._hook_errors = meter.create_counter(
            HOOK_ERRORS, unit="{error}", description="Errors contained inside the plugin's hooks")
        self._budget_store_errors = meter.create_counter(
            BUDGET_STORE_ERRORS, unit="{error}",
            description="Budget store calls that failed (reserve: the request went unchecked or was refused)")

        def observe_inflight(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(inflight())]

        meter.create_observable_up_down_counter(
            INFLIGHT, callbacks=[observe_inflight], unit="{request}",
            description="Requests the plugin is tracking that have not ended yet (bounded state)")

    def _dimensions(self, *values: tuple[str, Any]) -> Dimensions:
        """The dimensions as exported: None left out, the capped ones capped. Memoized by the
        values as given: they repeat from request to request, and what a capped dimension
        makes of a value never changes once decided. Callers must not change the dict."""
        found = self._memo.get(values)
        if found is None:
            found = Dimensions({name: self._capped[name](str(value)) if name in self._capped else value
                                for name, value in values if value is not None})
            if len(self._memo) >= 4096:  # bounded whatever the values
                self._memo.clear()
            self._memo[values] = found
        return found

    def _attempt_values(self, attempt: Attempt) -> tuple[tuple[str, Any], ...]:
        return ((a.GEN_AI_OPERATION_NAME, attempt.operation),
                (a.GEN_AI_PROVIDER_NAME, a.gen_ai_provider(attempt.provider)),
                (a.GEN_AI_REQUEST_MODEL, attempt.bounded_request_model),
                (a.MODEL_GROUP, attempt.model_group),
                (a.ERROR_TYPE, attempt.error_type))

    def record(self, request: Request) -> None:
        answered = request.answering_attempt
        request_dimensions = self._dimensions(
            (a.GEN_AI_OPERATION_NAME, request.attempts[0].operation if request.attempts else None),
            (a.GEN_AI_PROVIDER_NAME, a.gen_ai_provider(answered.provider) if answered else None),
            (a.MODEL_GROUP, request.model_group),
            (a.SERVED_MODEL_GROUP, request.served_group),
            (a.ERROR_TYPE, request.error_type),
            (a.TEAM_ALIAS, request.attribution.team_alias if self._team_dimension else None))
        self._requests.add(1, request_dimensions)
        self._cost.add(request.cost_usd, request_dimensions)
        values: tuple[tuple[str, Any], ...] = ()
        for attempt in request.attempts:
            values = self._attempt_values(attempt)
            outcome = "failure" if attempt.error_type else "success"
            self._attempts.add(1, self._dimensions(*values, (a.OUTCOME, outcome)))
            if attempt.end_ns is not None:
                self._duration.record((attempt.end_ns - attempt.start_ns) / 1e9, self._dimensions(*values))
        for counted, kind in request.transitions():
            totals = self._fallbacks if kind == "fallback" else self._retries
            totals.add(1, self._dimensions((a.MODEL_GROUP, counted.model_group)))
        if answered is not None:  # the last attempt: `values` are already its own
            usage = answered.usage
            for token_type, count in (("input", usage.input_tokens if usage else None),
                                      ("output", usage.output_tokens if usage else None)):
                if count is not None:
                    self._token_usage.record(count, self._dimensions(*values, (a.GEN_AI_TOKEN_TYPE, token_type)))
            if answered.time_to_first_chunk_s is not None:
                self._time_to_first_chunk.record(answered.time_to_first_chunk_s, self._dimensions(*values))

    def spans_dropped(self, count: int, reason: str) -> None:
        self._spans_dropped.add(count, {a.DROP_REASON: reason})

    def hook_error(self, hook: str) -> None:
        self._hook_errors.add(1, {a.HOOK: hook})

    # --- the budget guard's events ---------------------------------------------------------

    def budget_spent(self, budget: str, usd: float) -> None:
        self._budget_spend.add(usd, {a.BUDGET_NAME: self._budget_name(budget)})

    def budget_refused(self, budget: str) -> None:
        self._budget_refusals.add(1, {a.BUDGET_NAME: self._budget_name(budget)})

    def budget_store_error(self, step: str) -> None:
        self._budget_store_errors.add(1, {a.BUDGET_STORE_STEP: step})
