"""The plugin's histograms, aggregated in plain in-process structures and read by the SDK's
metric readers at collection time.

An SDK histogram's `record` validates and hashes the attributes and walks views, storages and
an exemplar reservoir: about 12 µs per value, three values per request. Here a value costs
one bucket search and a dict update (about 2 µs). The points exported are the SDK's explicit-
bucket aggregation's (count, sum, bucket counts, bounds, min, max; cumulative or delta as the
exporter prefers; the SDK's series limit with its overflow series): tests/test_histograms.py
compares them with the SDK's own for the same recordings. Exemplars are not kept (the SDK
takes them only when a sampled span is current, which never holds where the plugin records).

Used on the plugin's own meter provider (`OwnMeterProvider`); on any other the SDK's histogram
instruments are used.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricsData,
    PeriodicExportingMetricReader,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

# The SDK's default limit of series per instrument (per reader), and what it reports beyond.
SERIES_LIMIT = 2000
OVERFLOW_KEY = frozenset({("otel.metric.overflow", True)})


class Dimensions(dict[str, Any]):
    """A series' attributes, with their hashable form made once: the metrics recorder keeps
    and reuses them (a frozenset of the items per recording costs more than the recording)."""

    __slots__ = ("key",)

    def __init__(self, items: Mapping[str, Any]) -> None:
        super().__init__(items)
        self.key = frozenset(self.items())


def series_key(attributes: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    return attributes.key if type(attributes) is Dimensions else frozenset(attributes.items())


class _Point:
    """One series' aggregation since its start (cumulative) or the last collection (delta)."""

    __slots__ = ("buckets", "count", "max", "min", "start", "sum")

    def __init__(self, buckets: int, start: int) -> None:
        self.buckets = [0] * buckets
        self.count = 0
        self.sum: float = 0
        self.min, self.max = float("inf"), float("-inf")
        self.start = start


class _Sink:
    """One reader's points of every histogram."""

    def __init__(self, delta: bool) -> None:
        self.delta = delta
        self.points: dict[str, dict[frozenset[tuple[str, Any]], _Point]] = {}
        self.last_collection: int | None = None


class HistogramInstrument:
    """Like the SDK's Histogram: `record(value, attributes)`."""

    def __init__(self, histograms: Histograms, name: str, unit: str, description: str,
                 boundaries: Sequence[float]) -> None:
        self._histograms = histograms
        self.name, self.unit, self.description = name, unit, description
        self.boundaries = tuple(float(bound) for bound in boundaries)

    def record(self, value: float, attributes: Mapping[str, Any]) -> None:
        self._histograms.add(self, value, series_key(attributes))


class Histograms:
    """The plugin's histograms and the readers' points of them."""

    def __init__(self, scope: InstrumentationScope) -> None:
        self.scope = scope
        self._instruments: dict[str, HistogramInstrument] = {}
        self._sinks: list[_Sink] = []
        self._lock = threading.Lock()  # the sync hooks run on litellm's worker threads

    def create(self, name: str, unit: str, description: str, boundaries: Sequence[float]) -> HistogramInstrument:
        instrument = self._instruments[name] = HistogramInstrument(self, name, unit, description, boundaries)
        return instrument

    def sink(self, delta: bool) -> _Sink:
        sink = _Sink(delta)
        with self._lock:
            self._sinks.append(sink)
        return sink

    def add(self, instrument: HistogramInstrument, value: float, key: frozenset[tuple[str, Any]]) -> None:
        bucket = bisect_left(instrument.boundaries, value)
        with self._lock:
            for sink in self._sinks:
                series = sink.points.setdefault(instrument.name, {})
                point = series.get(key)
                if point is None:
                    # Each sink has its own series (a delta one starts afresh): its own overflow.
                    point_key = OVERFLOW_KEY if len(series) >= SERIES_LIMIT else key
                    point = series.get(point_key)
                    if point is None:
                        start = sink.last_collection or time.time_ns()
                        point = series[point_key] = _Point(len(instrument.boundaries) + 1, start)
                point.buckets[bucket] += 1
                point.count += 1
                point.sum += value
                if value < point.min:
                    point.min = value
                if value > point.max:
                    point.max = value

    def collect(self, sink: _Sink) -> list[Metric]:
        """The sink's metrics now, as the SDK's reader would collect them."""
        now = time.time_ns()
        with self._lock:
            points = sink.points
            if sink.delta:  # the next interval's series start now
                sink.points, sink.last_collection = {}, now
            snapshot = {name: [(key, point.start, tuple(point.buckets), point.count, point.sum, point.min, point.max)
                               for key, point in series.items()] for name, series in points.items()}
        temporality = AggregationTemporality.DELTA if sink.delta else AggregationTemporality.CUMULATIVE
        collected = []
        for name, series in snapshot.items():
            if not series:
                continue
            instrument = self._instruments[name]
            data_points = [
                HistogramDataPoint(attributes=dict(key), start_time_unix_nano=start,
                                   time_unix_nano=now, count=count, sum=total, bucket_counts=buckets,
                                   explicit_bounds=instrument.boundaries, min=low, max=high)
                for key, start, buckets, count, total, low, high in series]
            collected.append(Metric(name=name, description=instrument.description, unit=instrument.unit,
                                    data=Histogram(data_points=data_points, aggregation_temporality=temporality)))
        return collected


def merged(metrics_data: MetricsData, scope: InstrumentationScope, collected: list[Metric]) -> MetricsData:
    """`metrics_data` with the collected histograms added to their scope's metrics. (The SDK
    collects one ResourceMetrics per provider; it hands the reader nothing at all when no
    instrument has a point, which never happens with the plugin's in-flight gauge.)"""
    if not collected or not metrics_data.resource_metrics:
        return metrics_data
    resource_metrics = list(metrics_data.resource_metrics)
    scope_metrics = list(resource_metrics[0].scope_metrics)
    found = next((index for index, scoped in enumerate(scope_metrics) if scoped.scope == scope), None)
    if found is None:
        scope_metrics.append(ScopeMetrics(scope=scope, metrics=collected, schema_url=scope.schema_url or ""))
    else:
        scope_metrics[found] = replace(scope_metrics[found], metrics=[*scope_metrics[found].metrics, *collected])
    resource_metrics[0] = replace(resource_metrics[0], scope_metrics=scope_metrics)
    return MetricsData(resource_metrics=resource_metrics)


class OwnMetricReader(PeriodicExportingMetricReader):
    """The SDK's periodic reader, adding the plugin's own histograms to each collection."""

    def __init__(self, exporter: MetricExporter, histograms: Histograms) -> None:
        super().__init__(exporter)
        preferred = getattr(exporter, "_preferred_temporality", None) or {}
        self._histograms = histograms
        self._sink = histograms.sink(preferred.get(SdkHistogram) is AggregationTemporality.DELTA)

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        collected = self._histograms.collect(self._sink)
        super()._receive_metrics(merged(metrics_data, self._histograms.scope, collected),
                                 timeout_millis=timeout_millis, **kwargs)


class OwnMeterProvider(MeterProvider):
    """The plugin's private meter provider, with its histograms."""

    def __init__(self, exporters: Sequence[MetricExporter], resource: Resource, scope: InstrumentationScope) -> None:
        self.histograms = Histograms(scope)
        super().__init__(metric_readers=[OwnMetricReader(exporter, self.histograms) for exporter in exporters],
                         resource=resource)
