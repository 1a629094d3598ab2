"""The CostOtelLogger in-process with the real OpenTelemetry SDK: hooks contain bad input,
hostile values never reach the encoder, one bad span never fails its batch, and the proxy's
own redaction switches win."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from litellm_cost_otel import attributes as a
from litellm_cost_otel.devtools.hook_kwargs import ProxyHooks, chat_response, proxy_hooks
from litellm_cost_otel.devtools.otlp_receiver import OtlpReceiver
from litellm_cost_otel.encoding import CachingOTLPSpanExporter, KeyValueCache, encode_spans
from litellm_cost_otel.logger import CostOtelLogger
from litellm_cost_otel.settings import ATTRIBUTION_FIELDS, Settings
from litellm_cost_otel.telemetry import _CountingExporter


class Plugin:
    """The plugin with real SDK providers that keep what it emits in memory."""

    def __init__(self, **settings: Any) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.logger = CostOtelLogger(tracer_provider=tracer_provider, meter_provider=MeterProvider([self.metrics]),
                                     settings=Settings(**settings))

    def request(self, hooks: ProxyHooks, response: Any = None) -> None:
        """The proxy's hook sequence for one successful request."""
        response = response if response is not None else chat_response()

        async def run() -> None:
            await self.logger.async_pre_call_deployment_hook(hooks.start, "acompletion")
            await self.logger.async_post_call_success_deployment_hook(hooks.start, response, "acompletion")
            await self.logger.async_log_success_event(hooks.success, response, hooks.start_time, hooks.end_time)

        asyncio.run(run())
        self.logger.force_flush()  # the spans of finished requests are made shortly after, or now
    def by_call_id(self) -> dict[str, list[ReadableSpan]]:
        found: dict[str, list[ReadableSpan]] = {}
        request_ids = {span.context.span_id: span.attributes[a.CALL_ID] for span in self.spans.get_finished_spans()
                       if a.CALL_ID in (span.attributes or {})}
        for span in self.spans.get_finished_spans():
            parent = span.parent.span_id if span.parent else None
            call_id = request_ids.get(span.context.span_id) or request_ids.get(parent)
            found.setdefault(str(call_id), []).append(span)
        return found


def test_hooks_contain_malformed_input_and_keep_working() -> None:
    plugin = Plugin()
    logger = plugin.logger

    async def feed() -> None:
        for junk in (None, 42, "x", [], {"litellm_call_id": 7}, {"metadata": "nope"},
                     {"litellm_call_id": "c", "proxy_server_request": {"body": 5}, "litellm_metadata": []}):
            await logger.async_pre_call_deployment_hook(junk, None)  # type: ignore[arg-type]
            await logger.async_post_call_success_deployment_hook(junk, junk, None)  # type: ignore[arg-type]
            await logger.async_post_call_failure_deployment_hook(junk, junk, None)  # type: ignore[arg-type]
            await logger.async_log_success_event(junk, junk, junk, junk)  # type: ignore[arg-type]
            await logger.async_log_failure_event(junk, junk, junk, junk)  # type: ignore[arg-type]
            await logger.async_post_call_failure_hook(junk, junk, None)  # type: ignore[arg-type]
            logger.log_pre_api_call(None, None, junk)  # type: ignore[arg-type]
            logger.log_success_event(junk, junk, junk, junk)  # type: ignore[arg-type]

    asyncio.run(feed())
    assert logger.hook_errors == 0 and logger.inflight_requests == 0
    plugin.spans.clear()
    plugin.request(proxy_hooks(call_id="after-the-junk", cost=0.25))  # and then an ordinary request
    (attempt, request) = sorted(plugin.by_call_id()["after-the-junk"], key=lambda s: a.CALL_ID in s.attributes)
    assert request.attributes[a.COST_USD] == 0.25 and attempt.attributes[a.GEN_AI_USAGE_INPUT_TOKENS] == 3


def test_the_proxys_redaction_switches_win_over_the_opt_ins() -> None:
    plugin = Plugin(capture_content=True, attribution=frozenset(ATTRIBUTION_FIELDS))

    def spans_after(content: str) -> tuple[dict[str, Any], dict[str, Any]]:
        plugin.spans.clear()
        hooks = proxy_hooks(body={"messages": [{"role": "user", "content": content}]})
        plugin.request(hooks)
        by_kind = {span.attributes[a.OPENINFERENCE_SPAN_KIND]: dict(span.attributes)
                   for span in plugin.spans.get_finished_spans()}
        return by_kind["CHAIN"], by_kind["LLM"]

    request, attempt = spans_after("captured prompt")
    assert request[a.TEAM_ALIAS] == "payments" and request[a.KEY_HASH] == "h" * 64
    assert "captured prompt" in attempt[a.GEN_AI_INPUT_MESSAGES]
    assert "The answer." in attempt[a.GEN_AI_OUTPUT_MESSAGES]
    try:
        litellm.turn_off_message_logging = True
        litellm.redact_user_api_key_info = True
        request, attempt = spans_after("redacted prompt")
    finally:
        litellm.turn_off_message_logging = False
        litellm.redact_user_api_key_info = False
    assert a.GEN_AI_INPUT_MESSAGES not in attempt and a.GEN_AI_OUTPUT_MESSAGES not in attempt
    assert a.TEAM_ALIAS not in request and a.KEY_HASH not in request
    assert request[a.COST_USD] == 0.5  # the rest of the span is untouched


# --- hostile values: record -> spans -> encoder -----------------------------------------------

MEGABYTE = "x" * 1_000_000  # (hypothesis prints it in full on a failure)
any_text = st.text(st.characters(exclude_categories=()), max_size=30)  # lone surrogates included
huge_numbers = (st.integers(min_value=-(2**80), max_value=2**80)
                | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e300, -1e300, 1e11, 4102444800]))
times = huge_numbers | st.datetimes() | st.datetimes(timezones=st.just(datetime.timezone.utc)) | any_text
nested = st.recursive(st.none() | any_text | huge_numbers, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(any_text, inner, max_size=3), max_leaves=20)
strings = any_text | st.just(MEGABYTE) | huge_numbers | nested


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[ProxyHooks, dict[str, Any]]:
    route = draw(st.sampled_from(["metadata", "litellm_metadata"]))
    client_metadata = {"litellm_received_at": draw(times), "headers": {"traceparent": draw(strings)},
                       "user_api_key_team_alias": draw(strings)}
    hooks = proxy_hooks(
        call_id=draw(st.sampled_from(["hostile", "hostile\ud800", "hostile" + MEGABYTE])),
        metadata_key=route, body={"model": draw(strings), "metadata": client_metadata, "stream": draw(st.booleans())},
        litellm_received_at=draw(times), tags=draw(nested), user_api_key_team_alias=draw(strings),
        deployment_model_name=draw(strings), attempted_fallbacks=draw(huge_numbers))
    hooks.start["model"] = draw(strings)
    hooks.success.update(response_cost=draw(huge_numbers), completion_start_time=draw(times),
                         api_call_start_time=draw(times), stream=draw(st.booleans()))
    hooks.start_time, hooks.end_time = draw(times), draw(times)  # type: ignore[assignment]
    usage = {"prompt_tokens": draw(huge_numbers), "completion_tokens": draw(huge_numbers),
             "prompt_tokens_details": {"cached_tokens": draw(huge_numbers)}}
    response = {"id": draw(strings), "model": draw(strings), "usage": usage,
                "choices": [{"finish_reason": draw(strings), "message": {"role": draw(strings)}}]}
    return hooks, response


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile=hostile_requests())
def test_hostile_values_never_raise_and_never_cost_another_request_its_spans(
        hostile: tuple[ProxyHooks, dict[str, Any]]) -> None:
    plugin = Plugin(attribution=frozenset(ATTRIBUTION_FIELDS), capture_content=True)
    hooks, response = hostile
    plugin.request(hooks, response)
    plugin.request(proxy_hooks(call_id="ordinary", cost=0.125))
    assert plugin.logger.hook_errors == 0
    spans = plugin.spans.get_finished_spans()
    assert len(spans) == 4
    # One batch holding the hostile request's spans and the ordinary one's: both encoders take it.
    library_encode_spans(spans).SerializeToString()
    encode_spans(spans, KeyValueCache()).SerializeToString()
    content = (a.GEN_AI_INPUT_MESSAGES, a.GEN_AI_OUTPUT_MESSAGES)  # bounded by content_max_chars instead
    for span in spans:
        assert 0 < span.start_time <= span.end_time < 2**63
        assert all(len(value) <= 256 for key, value in span.attributes.items()
                   if isinstance(value, str) and key not in content)
        assert all(len(span.attributes.get(key, "")) <= 2 * 4096 for key in content)
    ordinary = plugin.by_call_id()["ordinary"]
    assert sorted(span.attributes.get(a.COST_USD, -1) for span in ordinary) == [-1, 0.125]
    plugin.metrics.get_metrics_data()  # the metrics take the same records


@pytest.fixture
def grpc_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


def test_a_span_the_encoder_rejects_is_dropped_alone_and_counted(grpc_receiver: OtlpReceiver) -> None:
    """Whatever slips past the lifecycle's checks (here a start time beyond the uint64 of
    OTLP, which the SDK accepts and the encoder raises on) costs only its own span."""
    spans_made = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans_made))
    tracer = provider.get_tracer("test")
    for name, start in (("before", 1), ("bad", 10**20), ("after", 2)):
        tracer.start_span(name, start_time=start).end(end_time=10**20 if name == "bad" else 3)
    dropped: list[tuple[int, str]] = []
    exporter = _CountingExporter(CachingOTLPSpanExporter(endpoint=grpc_receiver.endpoint, insecure=True),
                                 lambda count, reason: dropped.append((count, reason)))
    with pytest.raises(ValueError):  # what the batch processor would otherwise meet, uncounted
        library_encode_spans(spans_made.get_finished_spans())
    exporter.export(spans_made.get_finished_spans())
    received = grpc_receiver.wait_for(lambda spans: len(spans) >= 2)
    assert sorted(span.name for span in received) == ["after", "before"]
    assert dropped == [(1, "export_failed")]
    exporter.shutdown()


def test_spans_of_finished_requests_are_made_together_shortly_after_on_the_event_loop() -> None:
    plugin = Plugin()
    logger = plugin.logger
    response = chat_response()

    async def requests(count: int, first: int, queued_before: int = 0) -> tuple[int, int]:
        for number in range(first, first + count):
            hooks = proxy_hooks(call_id=f"deferred-{number}")
            await logger.async_pre_call_deployment_hook(hooks.start, "acompletion")
            await logger.async_post_call_success_deployment_hook(hooks.start, response, "acompletion")
            await logger.async_log_success_event(hooks.success, response, hooks.start_time, hooks.end_time)
        made_at_once = len(plugin.spans.get_finished_spans())
        # The hooks only queued their arguments: nothing read yet, no request in flight.
        assert len(logger._events) == queued_before + 3 * count and len(logger._lifecycle) == 0
        await asyncio.sleep(0.3)  # the emit delay, and the turns of the loop for batches after the first
        return made_at_once, len(plugin.spans.get_finished_spans())

    # 40 requests: none made during the hooks, all 80 spans shortly after, in batches of 32 per turn.
    assert asyncio.run(requests(40, 0)) == (0, 80)
    assert not logger._events and len(logger._lifecycle) == 0
    # A loop that ends with requests pending (asyncio.run returns at once): the next loop, a flush
    # or the exit makes them; nothing is lost.
    async def one_then_stop() -> None:
        hooks = proxy_hooks(call_id="pending-at-the-end")
        await logger.async_pre_call_deployment_hook(hooks.start, "acompletion")
        await logger.async_log_success_event(hooks.success, response, hooks.start_time, hooks.end_time)

    asyncio.run(one_then_stop())
    assert len(plugin.spans.get_finished_spans()) == 80 and len(logger._events) == 2
    assert asyncio.run(requests(1, 40, queued_before=2)) == (80, 84)  # this loop made the earlier one's too
    asyncio.run(one_then_stop())
    logger.force_flush()
    assert len(plugin.spans.get_finished_spans()) == 86 and logger.hook_errors == 0


def test_on_the_proxy_the_sync_twins_are_litellms_own_no_ops() -> None:
    """The proxy's instance skips the sync hooks (the async ones carry the same events there);
    in-process, where synchronous Router calls fire only those, they stay."""
    from litellm.integrations.custom_logger import CustomLogger

    from litellm_cost_otel.logger import ProxyLogger

    for name in ("log_pre_api_call", "log_success_event", "log_failure_event"):
        assert getattr(ProxyLogger, name) is getattr(CustomLogger, name)
        assert getattr(CostOtelLogger, name) is not getattr(CustomLogger, name)
