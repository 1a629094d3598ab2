"""Memory soak: many requests through the real proxy with the plugin, some of them streams
the client abandons after the first chunk. Does the proxy's memory settle, and does every
request (the abandoned ones included) end up as a request span at the receiver?

    python -m bench.soak [--requests 50000] [--concurrency 16] [--quick]

The proxy (one worker) is pinned to one core; the load, the fake LLM server behind the
`local` group and the OTLP receiver share the other. RSS (VmRSS) is read after the warm-up
and at the end, each after the same idle pause, so both points see the same steady state.

The plugin ends a request that never gets its end event after LITELLM_COST_OTEL_REQUEST_TIMEOUT
(default 900 s). The soak sets it shorter than the run (--request-timeout, 30 s), so abandoned
requests come and go during the run instead of piling up for all of it, and at the end it
waits that long, so every abandoned request has had the time to be ended and exported.
(litellm 1.108.7 has so far closed every abandoned stream with a success event itself.)

`--baseline` sends the same traffic through a proxy without callbacks: litellm's own growth.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp

from litellm_cost_otel import attributes as a
from litellm_cost_otel import metrics
from litellm_cost_otel.devtools.fake_llm import FakeLLMServer
from litellm_cost_otel.devtools.otlp_receiver import OtlpReceiver, ReceivedSpan
from litellm_cost_otel.devtools.proxy import LiteLLMProxy
from litellm_cost_otel.devtools.traces import PLUGIN_SCOPE

from . import harness
from .harness import fmt

GROWTH_LIMIT_MB = 5.0
RSS_SAMPLES = 10  # RSS readings spread over the run, to tell a steady climb from a step
CALL_ID_HEADER = "x-litellm-call-id"


class RequestLedger(OtlpReceiver):
    """The repo's real receiver, keeping only how each of the plugin's request spans ended
    (keeping every span of 50,000 requests would take a lot of memory)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}  # call id -> "ok" or the request's error.type
        self.request_spans = 0  # duplicates included
        super().__init__()

    def _add(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            for span in spans:
                if span.scope == PLUGIN_SCOPE and a.CALL_ID in span.attributes:
                    self.request_spans += 1
                    self.outcomes[str(span.attributes[a.CALL_ID])] = str(span.attributes.get(a.ERROR_TYPE, "ok"))

    def counts(self) -> tuple[int, dict[str, str]]:
        with self._lock:
            return self.request_spans, dict(self.outcomes)

    def metric_total(self, name: str) -> float:
        return sum(point.value for point in self.metric_points(name))


@dataclass(frozen=True)
class Plan:
    requests: int
    warmup: int
    concurrency: int
    abandon_every: int  # every n-th request is an abandoned stream
    settle_s: float
    request_timeout_s: float
    quick: bool
    baseline: bool  # the same traffic through a proxy without callbacks: litellm's own memory
    plugin_only: bool = False  # no baseline soak after the plugin's


@dataclass
class Traffic:
    """What the client sent: the call id of every answered request, abandoned or not."""

    call_ids: dict[str, bool] = field(default_factory=dict)  # call id -> abandoned
    sent: int = 0
    errors: int = 0
    missing_call_id: int = 0


def parse_args(argv: Sequence[str] | None) -> tuple[Plan, Path]:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50_000, help="requests in all (default 50000)")
    parser.add_argument("--warmup", type=int, default=5_000, help="requests before the first RSS reading (5000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--abandon-every", type=int, default=20,
                        help="every n-th request is a stream abandoned after its first chunk (default 20: 5%%)")
    parser.add_argument("--settle", type=float, default=10.0, help="idle seconds before each RSS reading (10)")
    parser.add_argument("--request-timeout", type=float, default=30.0,
                        help="the plugin's LITELLM_COST_OTEL_REQUEST_TIMEOUT during the soak (default 30 s)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute: 3000 requests")
    parser.add_argument("--baseline", action="store_true",
                        help="only the soak of a proxy WITHOUT callbacks (which by default follows the plugin's), "
                             "to tell litellm's own memory growth and collections from the plugin's")
    parser.add_argument("--plugin-only", action="store_true",
                        help="skip the baseline soak that follows the plugin's (its collections are the reference)")
    parser.add_argument("--output", type=Path, default=harness.RESULTS, help="results file (default bench/results.md)")
    args = parser.parse_args(argv)
    if args.quick:
        plan = Plan(requests=3000, warmup=600, concurrency=args.concurrency, abandon_every=args.abandon_every,
                    settle_s=3.0, request_timeout_s=5.0, quick=True, baseline=args.baseline,
                    plugin_only=args.plugin_only)
    else:
        plan = Plan(args.requests, args.warmup, args.concurrency, args.abandon_every, args.settle,
                    args.request_timeout, quick=False, baseline=args.baseline, plugin_only=args.plugin_only)
    if not 0 <= plan.warmup < plan.requests or plan.concurrency < 1 or plan.abandon_every < 1:
        parser.error("need 0 <= warmup < requests, concurrency >= 1 and abandon-every >= 1")
    return plan, args.output


def soak_sender(session: aiohttp.ClientSession, base_url: str, plan: Plan, traffic: Traffic,
                offset: int) -> harness.Sender:
    url = base_url + harness.CHAT_PATH
    answered = harness.chat_body()

    async def send(number: int) -> bool:
        number += offset
        abandon = number % plan.abandon_every == plan.abandon_every - 1
        # A slow stream from the fake LLM; unique text, as the fake server counts by message.
        body = harness.chat_body("local", f"chunk_delay=0.2 soak request {number}", stream=True) if abandon \
            else answered
        traffic.sent += 1
        async with session.post(url, data=body) as response:
            if response.status != 200:
                await response.read()
                return False
            call_id = response.headers.get(CALL_ID_HEADER)
            if abandon:
                for _ in range(100):  # up to the first chunk, then hang up
                    line = await response.content.readline()
                    if not line or line.startswith(b"data:"):
                        break
                response.close()  # drops the connection mid-stream
            else:
                await response.read()
        if call_id:
            traffic.call_ids[call_id] = abandon
        else:
            traffic.missing_call_id += 1
        return True

    return send


async def drive(proxy: LiteLLMProxy, plan: Plan, traffic: Traffic, first: int, count: int) -> harness.LoadResult:
    """Requests number first .. first+count-1, closed loop."""
    async with harness.client_session(proxy.master_key, plan.concurrency) as session:
        result = await harness.closed_loop(soak_sender(session, proxy.base_url, plan, traffic, first), count,
                                           plan.concurrency, harness.phase_time_limit(count))
    traffic.errors += result.errors
    if result.timed_out:
        print("  warning: a phase hit its time limit", file=sys.stderr)
    return result


@dataclass
class Readings:
    rss_after_warmup_mb: float = float("nan")
    rss_end_mb: float = float("nan")
    samples: list[tuple[int, float]] = field(default_factory=list)  # (requests done, RSS MB)
    load_s: float = 0.0
    answered: int = 0
    gc: harness.GcTotals = field(default_factory=harness.GcTotals)  # the proxy's collections after the warm-up
    gc_requests: int = 0  # the requests sent meanwhile

    def full_collections_per_10k(self) -> float:
        return self.gc.full / self.gc_requests * 10_000 if self.gc_requests else float("nan")


async def soak(proxy: LiteLLMProxy, plan: Plan, traffic: Traffic, readings: Readings, gc_probe: Path) -> None:
    pid = proxy.process.pid  # type: ignore[union-attr]
    print(f"warm-up: {plan.warmup} requests ...", flush=True)
    warm = await drive(proxy, plan, traffic, 0, plan.warmup)
    harness.check_alive(proxy)
    await asyncio.sleep(plan.settle_s)  # let the proxy's collector and batch exports settle
    readings.rss_after_warmup_mb = harness.rss_mb(pid)
    readings.samples.append((plan.warmup, readings.rss_after_warmup_mb))
    gc_after_warmup, sent_after_warmup = harness.gc_totals(gc_probe), traffic.sent
    print(f"RSS after warm-up: {readings.rss_after_warmup_mb:.1f} MB", flush=True)
    done, remaining = plan.warmup, plan.requests - plan.warmup
    load_s, answered = warm.wall_s, len(warm.latencies_s)
    for step in range(RSS_SAMPLES):
        count = remaining // RSS_SAMPLES + (1 if step < remaining % RSS_SAMPLES else 0)
        if count == 0:
            continue
        result = await drive(proxy, plan, traffic, done, count)
        harness.check_alive(proxy)
        done += count
        load_s, answered = load_s + result.wall_s, answered + len(result.latencies_s)
        readings.load_s, readings.answered = load_s, answered
        readings.samples.append((done, harness.rss_mb(pid)))
        print(f"{done:6} requests  {result.throughput:6.1f} req/s  RSS {readings.samples[-1][1]:7.1f} MB  "
              f"errors {traffic.errors}", flush=True)
    await asyncio.sleep(plan.settle_s)
    harness.check_alive(proxy)
    readings.rss_end_mb = harness.rss_mb(pid)
    readings.gc = harness.gc_totals(gc_probe) - gc_after_warmup
    readings.gc_requests = traffic.sent - sent_after_warmup


async def end_abandoned_requests(proxy: LiteLLMProxy, plan: Plan, traffic: Traffic) -> None:
    """Wait out the plugin's request timeout, then send a few requests: the plugin sweeps idle
    requests (at most once a second) when an attempt starts."""
    print(f"waiting {plan.request_timeout_s + 2:.0f} s for the plugin to end abandoned requests ...", flush=True)
    await asyncio.sleep(plan.request_timeout_s + 2)
    async with harness.client_session(proxy.master_key, 1) as session:
        send = harness.chat_sender(session, proxy.base_url, harness.chat_body())
        for _ in range(3):
            result = await harness.closed_loop(send, 5, 1, harness.phase_time_limit(5))
            traffic.sent, traffic.errors = traffic.sent + result.sent, traffic.errors + result.errors
            await asyncio.sleep(1.1)


def wait_for_quiet(ledger: RequestLedger, quiet_s: float, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    seen, since = ledger.counts()[0], time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.5)
        if (latest := ledger.counts()[0]) != seen:
            seen, since = latest, time.monotonic()


def section_name(plan: Plan) -> str:
    return "soak-baseline" if plan.baseline else "soak"


def report(outcome: Outcome, ledger: RequestLedger, cores: harness.Cores, baseline: Readings | None) -> str:
    plan, traffic, readings, failure = outcome.plan, outcome.traffic, outcome.readings, outcome.failure
    growth = readings.rss_end_mb - readings.rss_after_warmup_mb
    title = ("## Memory soak, baseline: the same traffic without callbacks (`make soak ARGS=--baseline`)"
             if plan.baseline else "## Memory soak (`make soak`)")
    lines = [title, ""]
    if failure:
        lines += [f"**FAILED: {failure}**", ""]
    if plan.quick:
        lines += ["**Quick smoke run (`--quick`): too short to judge a leak; run `make soak`.**", ""]
    who = "no callbacks" if plan.baseline else (
        f"the plugin (default settings except LITELLM_COST_OTEL_REQUEST_TIMEOUT={plan.request_timeout_s:g})")
    lines += [
        f"- Run: {outcome.started}, {outcome.minutes:.1f} min; {harness.versions()}",
        f"- Machine: {harness.machine()}; {cores.describe()}",
        f"- Load: {traffic.sent} requests at concurrency {plan.concurrency} through one proxy worker with "
        f"{who}; "
        f"`fast` (mock_response) and 1 in {plan.abandon_every} a stream from `local` (the fake LLM, "
        "chunk_delay=0.2) abandoned after its first chunk; "
        f"{readings.answered / readings.load_s if readings.load_s else 0:.0f} req/s; errors: {traffic.errors}",
        "",
        "| RSS after warm-up | RSS at the end | growth | limit | verdict |",
        "|---|---|---|---|---|",
        f"| {fmt(readings.rss_after_warmup_mb, 1)} MB (after {plan.warmup} requests and {plan.settle_s:g} s idle) "
        f"| {fmt(readings.rss_end_mb, 1)} MB (after {plan.requests}, same pause) "
        f"| {'-' if math.isnan(growth) else f'{growth:+.1f}'} MB "
        f"| < {GROWTH_LIMIT_MB:g} MB | {'PASS' if growth < GROWTH_LIMIT_MB and not failure else 'FAIL'} |",
        "",
        "RSS along the run (requests done: MB): "
        + ", ".join(f"{done}: {mb:.1f}" for done, mb in readings.samples),
        "",
        *gc_report(readings, baseline),
    ]
    if not plan.baseline and not failure:
        lines += ["", *inflight_report(traffic, ledger)]
    return "\n".join(lines)


GC_LIMIT = 1.10  # full collections at most 10% more frequent than without callbacks


def gc_report(readings: Readings, baseline: Readings | None) -> list[str]:
    """The proxy's full collections after the warm-up (bench/probes), against the baseline's."""
    rate = readings.full_collections_per_10k()
    lines = [f"Garbage collection after the warm-up: {readings.gc.full} full collections over "
             f"{readings.gc_requests} requests, {fmt(rate, 1)} per 10,000 requests; "
             f"{fmt(readings.gc.seconds * 1000 / readings.gc_requests if readings.gc_requests else float('nan'), 3)} "
             "ms per request in all collections."]
    if baseline is not None:
        base = baseline.full_collections_per_10k()
        ratio = rate / base if base else float("nan")
        verdict = "PASS" if ratio <= GC_LIMIT else "FAIL" if not math.isnan(ratio) else "UNDECIDED"
        lines += ["", "| full collections per 10,000 requests | the plugin | no callbacks (the baseline soak) | ratio "
                  "| limit | verdict |", "|---|---|---|---|---|---|",
                  f"| after the warm-up | {fmt(rate, 1)} | {fmt(base, 1)} | {fmt(ratio, 2)} | ≤ {GC_LIMIT:.2f} "
                  f"| {verdict} |"]
    return lines


def inflight_report(traffic: Traffic, ledger: RequestLedger) -> list[str]:
    request_spans, outcomes = ledger.counts()
    abandoned = [call_id for call_id, was_abandoned in traffic.call_ids.items() if was_abandoned]
    missing = [call_id for call_id in traffic.call_ids if call_id not in outcomes]
    abandoned_endings = collections.Counter(outcomes.get(call_id, "no span") for call_id in abandoned)
    other_endings = collections.Counter(outcome for call_id, outcome in outcomes.items()
                                        if not traffic.call_ids.get(call_id, False))
    lines = [
        "The plugin's in-flight state at the end, seen from the receiver (after waiting out the request "
        "timeout and the SIGTERM flush):",
        f"- request spans for {len(traffic.call_ids) - len(missing)} of {len(traffic.call_ids)} answered requests "
        f"({len(missing)} missing; {request_spans - len(outcomes)} duplicates)",
        f"- the {len(abandoned)} abandoned streams ended as: "
        + (", ".join(f"{name} {count}" for name, count in abandoned_endings.most_common()) or "-"),
        "- the others ended as: " + (", ".join(f"{name} {count}" for name, count in other_endings.most_common())
                                     or "-"),
        f"- plugin metrics: {ledger.metric_total(metrics.HOOK_ERRORS):g} hook errors, "
        f"{ledger.metric_total(metrics.SPANS_DROPPED):g} spans dropped",
    ]
    if traffic.missing_call_id:
        lines.append(f"- {traffic.missing_call_id} answers carried no {CALL_ID_HEADER} header (not checked)")
    return lines


@dataclass
class Outcome:
    plan: Plan
    traffic: Traffic
    readings: Readings
    started: str
    minutes: float
    failure: str | None


def run_soak(plan: Plan, cores: harness.Cores, work: Path, ledger: RequestLedger, fake_llm: FakeLLMServer) -> Outcome:
    """One soak: a proxy with the plugin (or, for the baseline, without callbacks) and its traffic."""
    started, began = harness.utc_now(), time.monotonic()
    local = {"model_name": "local", "litellm_params": {
        "model": "openai/local-model", "api_base": "os.environ/LOCAL_MODEL_BASE_URL", "api_key": "x",
        "input_cost_per_token": 0.0000002, "output_cost_per_token": 0.0000006}}
    name = section_name(plan)
    config = harness.write_proxy_config(work / f"{name}.yaml", [] if plan.baseline else [harness.PLUGIN],
                                        [harness.mock_deployment(), local], {"num_retries": 0})
    env = {"LOCAL_MODEL_BASE_URL": fake_llm.base_url,
           "PYTHONFAULTHANDLER": "1"}  # a crash leaves every thread's traceback in the log
    if not plan.baseline:
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": ledger.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_SERVICE_NAME": "bench-soak", "LITELLM_COST_OTEL_REQUEST_TIMEOUT": str(plan.request_timeout_s)}
    gc_probe = work / f"{name}.gc.json"
    proxy = LiteLLMProxy(config, harness.with_gc_probe(env, gc_probe), log_path=work / f"{name}.log")
    traffic, readings = Traffic(), Readings()
    try:
        print(f"starting the proxy {'without callbacks' if plan.baseline else 'with the plugin'} ...", flush=True)
        proxy.start()
        harness.pin_process_tree(proxy.process.pid, cores.proxy)  # type: ignore[union-attr]
        try:
            asyncio.run(soak(proxy, plan, traffic, readings, gc_probe))
            if not plan.baseline:
                asyncio.run(end_abandoned_requests(proxy, plan, traffic))
                wait_for_quiet(ledger, quiet_s=6.0, limit_s=30.0)
            proxy.stop()  # SIGTERM: the plugin flushes its spans and metrics
            if not plan.baseline:
                wait_for_quiet(ledger, quiet_s=1.0, limit_s=10.0)
            failure = None
        except harness.ProxyDiedError as died:
            failure = str(died)
    finally:
        with contextlib.suppress(Exception):
            proxy.stop()
            proxy.client.close()
    return Outcome(plan, traffic, readings, started, (time.monotonic() - began) / 60, failure)


def main(argv: Sequence[str] | None = None) -> int:
    plan, output = parse_args(argv)
    harness.exit_cleanly_on_signals()
    harness.clear_inherited_otel_settings()
    cores = harness.choose_cores()
    harness.pin_this_thread(cores.client)  # first: the receiver and fake LLM threads inherit it
    print(f"{harness.versions()}; {harness.machine()}; {cores.describe()}")
    work = Path(tempfile.mkdtemp(prefix="litellm-cost-otel-soak-"))
    ledger, fake_llm = RequestLedger().start(), FakeLLMServer().start()
    # The plugin's soak, then (unless told otherwise) the same traffic without callbacks, for
    # the garbage collections to compare with.
    plans = [plan] if plan.baseline or plan.plugin_only else [plan, replace(plan, baseline=True)]
    try:
        outcomes = [run_soak(each, cores, work, ledger, fake_llm) for each in plans]
        baseline = next((outcome.readings for outcome in outcomes if outcome.plan.baseline), None)
        for outcome in outcomes:
            text = report(outcome, ledger, cores, None if outcome.plan.baseline else baseline)
            harness.write_section(section_name(outcome.plan), text, output)
            print("\n" + text + f"\n\nwritten to {output}")
        if any(outcome.failure for outcome in outcomes):
            return 1  # the proxy's log stays where the report says
    except BaseException:
        print(f"proxy logs kept in {work}", file=sys.stderr)
        raise
    finally:
        ledger.stop()
        fake_llm.stop()
    for leftover in work.iterdir():
        leftover.unlink()
    work.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
