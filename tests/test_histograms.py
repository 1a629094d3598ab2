"""The plugin's own histogram aggregation exports exactly the points the SDK's histograms
export for the same recordings (and every other metric is untouched): the mixed workload of
tests/test_spans.py recorded through MetricsRecorder on the SDK's MeterProvider and on the
plugin's OwnMeterProvider, collected by the same kind of periodic reader, cumulative and delta."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from test_spans import mixed_workload

from litellm_cost_otel import histograms
from litellm_cost_otel.devtools.otlp_receiver import OtlpReceiver
from litellm_cost_otel.devtools.waiting import eventually
from litellm_cost_otel.histograms import OwnMeterProvider
from litellm_cost_otel.metrics import OPERATION_DURATION, TOKEN_USAGE, MetricsRecorder
from litellm_cost_otel.model import Request
from litellm_cost_otel.settings import Settings
from litellm_cost_otel.telemetry import SCOPE, build_meter_provider

RESOURCE = Resource({"service.name": "equality"})


class CapturingExporter(MetricExporter):
    def __init__(self, delta: bool) -> None:
        temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
        super().__init__(preferred_temporality={SdkHistogram: temporality})
        self.exported: list[MetricsData] = []

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def comparable(data: MetricsData) -> dict[tuple[str, str], Any]:
    """Everything exported but the timestamps (checked for order instead)."""
    found: dict[tuple[str, str], Any] = {}
    for resource_metrics in data.resource_metrics:
        assert resource_metrics.resource.attributes["service.name"] == "equality"
        for scoped in resource_metrics.scope_metrics:
            for metric in scoped.metrics:
                points = []
                for point in metric.data.data_points:
                    assert point.start_time_unix_nano <= point.time_unix_nano
                    if isinstance(point, HistogramDataPoint):
                        assert not point.exemplars
                        points.append((sorted(point.attributes.items()), point.count, point.sum,
                                       tuple(point.bucket_counts), tuple(point.explicit_bounds), point.min, point.max))
                    else:
                        assert isinstance(point, NumberDataPoint)
                        points.append((sorted(point.attributes.items()), point.value))
                found[(scoped.scope.name + " " + str(scoped.scope.version) + " " + scoped.schema_url, metric.name)] = (
                    metric.description, metric.unit, type(metric.data).__name__,
                    getattr(metric.data, "aggregation_temporality", None), sorted(points, key=repr))
    return found


def exports(provider: MeterProvider, exporter: CapturingExporter, rounds: Sequence[list[Request]]) -> list[Any]:
    recorder = MetricsRecorder(provider.get_meter(SCOPE.name, SCOPE.version, schema_url=SCOPE.schema_url), 8, True,
                               histograms=getattr(provider, "histograms", None))
    for requests in rounds:
        for request in requests:
            recorder.record(request)
        provider.force_flush()
    provider.shutdown()
    return [comparable(data) for data in exporter.exported]


@pytest.mark.parametrize("delta", [False, True], ids=["cumulative", "delta"])
def test_own_histograms_export_what_the_sdk_exports(delta: bool) -> None:
    workload = mixed_workload()
    rounds = [workload, workload[:7], []]  # the last interval has no recordings at all
    sdk_exporter, own_exporter = CapturingExporter(delta), CapturingExporter(delta)
    sdk = exports(MeterProvider(metric_readers=[PeriodicExportingMetricReader(sdk_exporter)], resource=RESOURCE),
                  sdk_exporter, rounds)
    own = exports(OwnMeterProvider([own_exporter], RESOURCE, SCOPE), own_exporter, rounds)
    assert own == sdk
    # The comparison saw the histograms, with values, in every collection that had any.
    names = {name for _, name in sdk[0]}
    assert {TOKEN_USAGE, OPERATION_DURATION, "gen_ai.client.operation.time_to_first_chunk"} <= names
    duration = next(value for (_, name), value in sdk[1].items() if name == OPERATION_DURATION)
    def timed(requests: list[Request]) -> int:  # an abandoned attempt has no duration
        return sum(attempt.end_ns is not None for request in requests for attempt in request.attempts)

    assert sum(point[1] for point in duration[4]) == timed(workload[:7]) + (0 if delta else timed(workload))
    assert (OPERATION_DURATION in {name for _, name in sdk[2]}) is not delta  # delta: nothing new, no point


def test_series_beyond_the_limit_go_to_the_overflow_series(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(histograms, "SERIES_LIMIT", 3)
    exporter = CapturingExporter(delta=False)
    provider = OwnMeterProvider([exporter], RESOURCE, SCOPE)
    # Another scope's gauge only: the histogram's scope is added to the collection.
    provider.get_meter("another").create_observable_gauge("g", callbacks=[lambda options: [Observation(1)]])
    instrument = provider.histograms.create("h", "s", "test", [1.0, 2.0])
    for number in range(10):
        instrument.record(number / 4, {"n": number})
    provider.force_flush()
    provider.shutdown()
    [resource_metrics] = exporter.exported[0].resource_metrics
    assert {scoped.scope.name for scoped in resource_metrics.scope_metrics} == {"another", SCOPE.name}
    [metric] = [metric for scoped in resource_metrics.scope_metrics for metric in scoped.metrics if metric.name == "h"]
    points = {tuple(point.attributes.items()): point for point in metric.data.data_points}
    assert len(points) == 4
    overflow = points[(("otel.metric.overflow", True),)]
    assert (overflow.count, overflow.sum, tuple(overflow.bucket_counts)) == (7, sum(n / 4 for n in range(3, 10)),
                                                                            (2, 4, 1))
    assert (overflow.min, overflow.max) == (0.75, 2.25)


@pytest.mark.parametrize("preference", ["cumulative", "delta"])
def test_the_plugins_meter_provider_follows_the_exporters_temporality_and_delivers(
        monkeypatch: pytest.MonkeyPatch, preference: str) -> None:
    receiver = OtlpReceiver().start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)  # the exporter reads them itself
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", preference)
        provider = build_meter_provider(Settings(), {})
        assert isinstance(provider, OwnMeterProvider)
        assert [sink.delta for sink in provider.histograms._sinks] == [preference == "delta"]
        recorder = MetricsRecorder(provider.get_meter(SCOPE.name), 8, False, histograms=provider.histograms)
        workload = mixed_workload()
        for requests in (workload, workload[:7]):
            for request in requests:
                recorder.record(request)
            provider.force_flush()
        timed = sum(attempt.end_ns is not None for request in workload + workload[:7] for attempt in request.attempts)
        # The receiver adds delta points up and keeps the last cumulative ones: the same total.
        points = eventually(lambda: receiver.metric_points(OPERATION_DURATION),
                            lambda found: sum(point.count for point in found) >= timed, timeout=15, interval=0.1)
        assert sum(point.count for point in points) == timed
        provider.shutdown()
    finally:
        receiver.stop()


def test_each_reader_overflows_on_its_own_series(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(histograms, "SERIES_LIMIT", 2)
    cumulative, delta = CapturingExporter(delta=False), CapturingExporter(delta=True)
    provider = OwnMeterProvider([cumulative, delta], RESOURCE, SCOPE)
    provider.get_meter("another").create_observable_gauge("g", callbacks=[lambda options: [Observation(1)]])
    instrument = provider.histograms.create("h", "s", "test", [1.0])
    for number in range(2):
        instrument.record(0.5, {"n": number})
    provider.force_flush()  # the delta reader starts afresh; the cumulative one keeps its two series
    instrument.record(0.5, {"n": 2})
    provider.force_flush()
    provider.shutdown()

    def series(exporter: CapturingExporter) -> list[tuple[tuple[str, Any], ...]]:
        scope_metrics = exporter.exported[1].resource_metrics[0].scope_metrics
        return sorted(tuple(point.attributes.items()) for scoped in scope_metrics
                      for metric in scoped.metrics if metric.name == "h" for point in metric.data.data_points)

    assert series(cumulative) == [(("n", 0),), (("n", 1),), (("otel.metric.overflow", True),)]
    assert series(delta) == [(("n", 2),)]
