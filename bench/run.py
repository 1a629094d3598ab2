"""Side-by-side benchmark: what each kind of telemetry costs the real LiteLLM proxy.

Seven configurations, each its own proxy (one worker, mock deployments) kept alive for the whole
run: no callbacks, this plugin (traces + metrics over OTLP/gRPC, default settings), litellm's
"otel" callback v1, v2 (LITELLM_OTEL_V2=true), the plugin's output emitted alone (its
spans and histograms without its reading of the hooks: what that output costs through the
SDK), and the budget guard's pair: the plugin with team keys (a custom auth), and the same
with one team budget on a real Redis (their difference is what the guard adds). The proxies
share one CPU core and only one is under load at a time; the load generator and the OTLP
receivers run on the other core.
A round first takes each configuration in turn through its saturation phase (A B C D E):

    warm-up (c=16) | settle | [CPU meter on] c=16 phase | settle [CPU meter off]

then measures lone requests to all of them at once, alternating request by request
(A B C D E, B C D E A, ..., a short idle gap after each answer), so that the latency differences
are taken at the same moments and the machine's drift cancels out of them:

    [CPU meters on] c=1, alternating | settle [CPU meters off]

The settle pauses let batch exporters (5 s schedule by default) send what a phase queued, so
that export work is billed to the configuration that caused it, and so that no phase shares
the core with the export of a busier one. Results are medians over rounds.

    python -m bench.run [--rounds 6] [--requests 3000] [--warmup 200] [--quick] [--configs none,plugin]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litellm_cost_otel.devtools.deploy_tools import RedisServer, fetch_redis
from litellm_cost_otel.devtools.gateway import TEAM_AUTH
from litellm_cost_otel.devtools.proxy import LiteLLMProxy, free_port

from . import harness
from .harness import LoadResult, fmt, median
from .receiver import ReceiverProcess

CONCURRENCY = 16
UPSTREAMS = {
    "mock": "`mock_response` deployment",
    "http": "a deployment calling an OpenAI-compatible HTTP server on 127.0.0.1 (the repo's fake LLM, "
            "its own process on the client's core)",
}


@dataclass(frozen=True)
class Configuration:
    name: str
    label: str
    callbacks: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    exports: bool = True  # sends spans to its receiver
    team_auth: bool = False  # the test custom auth: each key a team (as a DB-backed proxy resolves)
    budget: bool = False  # one team budget on a shared Redis (the bench starts one)
    timed: bool = False  # counts the plugin's own CPU inside the proxy (bench/probes/timed_plugin.py)


CONFIGURATIONS = (
    Configuration("none", "no callbacks", (), exports=False),
    Configuration("plugin", "litellm_cost_otel (traces + metrics)", (harness.PLUGIN,),
                  {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp"}),
    Configuration("otel-v1", 'litellm "otel" v1', ("otel",)),
    Configuration("otel-v2", 'litellm "otel" v2', ("otel",), {"LITELLM_OTEL_V2": "true"}),
    # The plugin's output alone: what its two spans and three histograms cost through the SDK.
    Configuration("floor", "the plugin's spans and histograms alone (output floor)",
                  ("bench.floor_logger.proxy_handler_instance",),
                  {"PYTHONPATH": str(harness.REPO), "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp"}),
    # Diagnostics, not in the default run: a second proxy without callbacks (how far two
    # identical proxies differ), litellm's own cost of calling a callback's hooks, the least
    # any SDK-based span plugin costs (one span, four attributes, no metrics), the plugin
    # with exporters `none` (records and spans made, nothing exported, no metrics),
    # the plugin without the OpenInference twins (fewer attributes to make, encode, send), and
    # that with no metrics either (for a Collector that derives them from the spans).
    Configuration("none-again", "no callbacks, a second proxy", (), exports=False),
    # The plugin with its own CPU counted inside the proxy (bench/probes/timed_plugin.py), and
    # the same for an earlier version checked out at $BENCH_BEFORE (`git worktree add DIR REV`).
    Configuration("plugin-timed", "litellm_cost_otel, its own CPU counted inside the proxy",
                  ("timed_plugin.proxy_handler_instance",),
                  {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp"}, timed=True),
    Configuration("plugin-timed-before", "the same, the version at $BENCH_BEFORE",
                  ("timed_plugin.proxy_handler_instance",),
                  {"PYTHONPATH": os.environ.get("BENCH_BEFORE", ""), "OTEL_TRACES_EXPORTER": "otlp",
                   "OTEL_METRICS_EXPORTER": "otlp"}, timed=True),
    Configuration("noop", "do-nothing CustomLogger (floor)", ("bench.noop_logger.proxy_handler_instance",),
                  {"PYTHONPATH": str(harness.REPO)}, exports=False),
    Configuration("stub", "one-span CustomLogger (SDK floor)", ("bench.stub_logger.proxy_handler_instance",),
                  {"PYTHONPATH": str(harness.REPO)}),
    Configuration("plugin-no-export", "litellm_cost_otel, exporters none (no export, no metrics)", (harness.PLUGIN,),
                  {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}, exports=False),
    Configuration("plugin-lean", "litellm_cost_otel, openinference: false", (harness.PLUGIN,),
                  {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp",
                   "LITELLM_COST_OTEL_OPENINFERENCE": "false"}),
    Configuration("plugin-traces-lean", "litellm_cost_otel, traces only, openinference: false", (harness.PLUGIN,),
                  {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none",
                   "LITELLM_COST_OTEL_OPENINFERENCE": "false"}),
    # The budget guard: one team budget on Redis, beside the same plugin and auth without it
    # (the custom auth gives requests their team, and costs the same in both).
    Configuration("plugin-team-auth", "litellm_cost_otel, team keys (custom auth)", (harness.PLUGIN,),
                  {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp"}, team_auth=True),
    Configuration("plugin-budget", "litellm_cost_otel, team keys, one team budget on Redis", (harness.PLUGIN,),
                  {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp"}, team_auth=True, budget=True),
)
DEFAULT_CONFIGURATIONS = ("none", "plugin", "otel-v1", "otel-v2", "floor", "plugin-team-auth", "plugin-budget")
BY_NAME = {configuration.name: configuration for configuration in CONFIGURATIONS}


@dataclass
class Measurement:
    """One configuration in one round."""

    c16: LoadResult
    c1: LoadResult
    cpu_ms_per_request: float
    gc: harness.GcTotals  # the proxy's collections over the same phases and settles
    plugin_cpu: dict[str, int]  # the timed plugin's own CPU ns over them, by kind ({} for the others)


@dataclass(frozen=True)
class Meters:
    """A proxy's running totals: CPU seconds, garbage collections, the timed plugin's own CPU ns."""

    cpu_s: float
    gc: harness.GcTotals
    own: dict[str, int]

    def __sub__(self, before: Meters) -> Meters:
        return Meters(self.cpu_s - before.cpu_s, self.gc - before.gc, harness.difference(self.own, before.own))

    def __add__(self, other: Meters) -> Meters:
        return Meters(self.cpu_s + other.cpu_s, self.gc + other.gc, harness.total(self.own, other.own))


@dataclass
class Subject:
    """One configuration's proxy and everything measured on it."""

    configuration: Configuration
    proxy: LiteLLMProxy
    gc_probe: Path
    cores: frozenset[int]
    cpu_probe: Path | None = None  # bench/probes/timed_plugin.py's totals
    measurements: list[Measurement] = field(default_factory=list)
    sent: int = 0  # every request, warm-up included, for spans per request
    errors: int = 0
    rss_start_mb: float = float("nan")
    rss_end_mb: float = float("nan")
    spans: int = 0

    def meters(self) -> Meters:
        """What the proxy has spent so far."""
        return Meters(harness.cpu_seconds(self.proxy.process.pid),  # type: ignore[union-attr]
                      harness.gc_totals(self.gc_probe),
                      harness.plugin_cpu(self.cpu_probe) if self.cpu_probe is not None else {})

    def count(self, *phases: LoadResult) -> None:
        for phase in phases:
            self.sent += phase.sent
            self.errors += phase.errors
            if phase.timed_out:
                print(f"  warning: {self.configuration.name}: a phase hit its time limit", file=sys.stderr)


@dataclass(frozen=True)
class Plan:
    rounds: int
    requests: int
    requests_c1: int
    warmup: int
    settle_s: float
    gap_s: float
    quick: bool
    upstream: str = "mock"  # "mock": mock_response; "http": a local OpenAI-compatible server
    fresh: bool = False  # new proxies for every round


def parse_args(argv: Sequence[str] | None) -> tuple[Plan, list[Configuration], Path]:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6,
                        help="rounds of A B C D E (default 6: the fewest with a 95%% interval of the median)")
    parser.add_argument("--requests", type=int, default=3000, help="requests per c=16 phase (default 3000)")
    parser.add_argument("--requests-c1", type=int, default=500,
                        help="lone requests per configuration and round (default 500)")
    parser.add_argument("--gap-ms", type=float, default=5.0,
                        help="idle ms after each lone request, before the next to any proxy (default 5)")
    parser.add_argument("--warmup", type=int, default=200,
                        help="warm-up requests before each measurement (default 200)")
    parser.add_argument("--settle", type=float, default=6.0,
                        help="seconds of idle after warm-up and after the phases (default 6: > the 5 s export delay)")
    parser.add_argument("--upstream", choices=("mock", "http"), default="mock",
                        help="what answers: litellm's mock_response (default, the targets' workload), or an "
                             "OpenAI-compatible HTTP server on 127.0.0.1 in its own process (a real upstream call)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of about two minutes: 2 rounds, 300/100 requests, 50 warm-up, 2 s settle")
    parser.add_argument("--fresh-proxies", action="store_true",
                        help="start every proxy anew before each round, so that how fast one process happens to be "
                             "(its memory placement) varies from round to round instead of biasing all of them")
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGURATIONS),
                        help=f"which, in order (default {','.join(DEFAULT_CONFIGURATIONS)}; all: {','.join(BY_NAME)})")
    parser.add_argument("--output", type=Path, default=harness.RESULTS, help="results file (default bench/results.md)")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown or not names:
        parser.error(f"unknown configuration(s) {unknown}; choose from {','.join(BY_NAME)}")
    if "plugin-timed-before" in names and not os.path.isdir(os.path.join(os.environ.get("BENCH_BEFORE", "-"),
                                                                         "litellm_cost_otel")):
        parser.error("plugin-timed-before needs BENCH_BEFORE, a checkout of the earlier version")
    if args.quick:
        plan = Plan(rounds=2, requests=300, requests_c1=100, warmup=50, settle_s=2.0, gap_s=args.gap_ms / 1000,
                    quick=True, upstream=args.upstream, fresh=args.fresh_proxies)
    else:
        plan = Plan(args.rounds, args.requests, args.requests_c1, args.warmup, args.settle, args.gap_ms / 1000,
                    quick=False, upstream=args.upstream, fresh=args.fresh_proxies)
    if min(plan.rounds, plan.requests, plan.requests_c1) < 1 or min(plan.warmup, plan.settle_s, plan.gap_s) < 0:
        parser.error("rounds and request counts must be positive")
    return plan, [BY_NAME[name] for name in names], args.output


async def measure_c16(subject: Subject, plan: Plan, first_round: bool) -> tuple[LoadResult, Meters]:
    """One configuration's saturation phase: the phase, and what the proxy spent over it and the settle after."""
    proxy, pid = subject.proxy, subject.proxy.process.pid  # type: ignore[union-attr]
    async with harness.client_session(proxy.master_key, CONCURRENCY) as session:
        send = harness.chat_sender(session, proxy.base_url, harness.chat_body())
        warmup = await harness.closed_loop(send, plan.warmup, CONCURRENCY, harness.phase_time_limit(plan.warmup))
        await asyncio.sleep(plan.settle_s)
        if first_round:
            subject.rss_start_mb = harness.rss_mb(pid)
        before = subject.meters()
        c16 = await harness.closed_loop(send, plan.requests, CONCURRENCY, harness.phase_time_limit(plan.requests))
        await asyncio.sleep(plan.settle_s)
        spent = subject.meters() - before
    harness.check_alive(proxy)
    subject.count(warmup, c16)
    return c16, spent


async def measure_c1(subjects: list[Subject], plan: Plan) -> list[tuple[LoadResult, Meters]]:
    """Every configuration's lone requests, taken in turn request by request (see
    `harness.alternating`): each phase, and what each proxy spent over it and the settle after."""
    async with contextlib.AsyncExitStack() as stack:
        sends = []
        for subject in subjects:
            session = await stack.enter_async_context(harness.client_session(subject.proxy.master_key, 1))
            sends.append(harness.chat_sender(session, subject.proxy.base_url, harness.chat_body()))
        before = [subject.meters() for subject in subjects]
        phases = await harness.alternating(sends, plan.requests_c1, plan.gap_s,
                                           harness.phase_time_limit(plan.requests_c1 * len(subjects)))
        await asyncio.sleep(plan.settle_s)
        spent = [subject.meters() - earlier for subject, earlier in zip(subjects, before, strict=True)]
    for subject, phase in zip(subjects, phases, strict=True):
        harness.check_alive(subject.proxy)
        subject.count(phase)
    return list(zip(phases, spent, strict=True))


def restart(subject: Subject) -> None:
    """The subject's proxy replaced by a new process of the same configuration."""
    old = subject.proxy
    old.stop()  # SIGTERM: the plugin flushes what is left
    old.client.close()
    subject.proxy = LiteLLMProxy(old.config_path, {key: value for key, value in old.env.items()
                                                   if key != "LITELLM_MASTER_KEY"}, log_path=old.log_path)
    subject.proxy.start()
    harness.pin_process_tree(subject.proxy.process.pid, subject.cores)  # type: ignore[union-attr]


async def run_rounds(subjects: list[Subject], plan: Plan) -> None:
    for number in range(plan.rounds):
        if plan.fresh and number > 0:
            print("starting new proxies ...", flush=True)
            for subject in subjects:
                restart(subject)
        saturated = [await measure_c16(subject, plan, first_round=number == 0 or plan.fresh) for subject in subjects]
        lone = await measure_c1(subjects, plan)
        for subject, (c16, c16_spent), (c1, c1_spent) in zip(subjects, saturated, lone, strict=True):
            measured, spent = c16.sent + c1.sent, c16_spent + c1_spent
            m = Measurement(c16, c1, spent.cpu_s * 1000 / measured if measured else float("nan"), spent.gc, spent.own)
            subject.measurements.append(m)
            print(f"round {number + 1}/{plan.rounds} {subject.configuration.name:8} "
                  f"{m.c16.throughput:7.1f} req/s  CPU {m.cpu_ms_per_request:5.2f} ms/req  "
                  f"p50 c1 {m.c1.percentile_ms(50):6.2f} ms  p99 c16 {m.c16.percentile_ms(99):7.1f} ms  "
                  f"full GCs {m.gc.full}  "
                  f"errors {m.c16.errors + m.c1.errors}", flush=True)


def wait_for_quiet_receivers(receivers: ReceiverProcess, quiet_s: float, limit_s: float) -> dict[str, int]:
    """Span counts once they stopped changing for quiet_s (batch exporters send within ~5 s)."""
    deadline = time.monotonic() + limit_s
    counts, since = receivers.counts(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.5)
        latest = receivers.counts()
        if latest != counts:
            counts, since = latest, time.monotonic()
    return counts


# --- the report ------------------------------------------------------------------------------

def per_round(subject: Subject, baseline: Subject | None, value: str) -> list[float]:
    """A per-round series: throughput ratio, added p50 at c=1, or added CPU, against no callbacks."""
    if baseline is None:
        return []
    pairs = zip(subject.measurements, baseline.measurements, strict=True)
    if value == "ratio":
        return [m.c16.throughput / b.c16.throughput if b.c16.throughput else float("nan") for m, b in pairs]
    if value == "added_p50_c1":
        return [m.c1.percentile_ms(50) - b.c1.percentile_ms(50) for m, b in pairs]
    return [m.cpu_ms_per_request - b.cpu_ms_per_request for m, b in pairs]


def report(subjects: list[Subject], plan: Plan, cores: harness.Cores, started: str, minutes: float) -> str:
    baseline = next((s for s in subjects if s.configuration.name == "none"), None)
    lines = [
        "## Side-by-side benchmark (`make bench`)",
        "",
    ]
    if plan.quick:
        lines += ["**Quick smoke run (`--quick`): too short to quote; run `make bench` on a quiet machine.**", ""]
    lines += [
        f"- Run: {started}, {minutes:.1f} min; {harness.versions()}",
        f"- Machine: {harness.machine()}; {cores.describe()}",
        f"- Method: one proxy per configuration (1 worker, {UPSTREAMS[plan.upstream]}), interleaved "
        f"{' '.join(s.configuration.name for s in subjects)} x {plan.rounds} rounds; each: {plan.warmup} warm-up, "
        f"{plan.requests} requests at c={CONCURRENCY}; then {plan.requests_c1} lone requests each, alternating "
        f"between the proxies request by request with {plan.gap_s * 1000:g} ms idle after each; "
        f"{plan.settle_s:g} s settles; "
        f"{'new proxies for every round (RSS: the last ones); ' if plan.fresh else ''}"
        "closed-loop aiohttp client; spans over OTLP/gRPC to a local receiver; medians over rounds",
        "- CPU ms/request: proxy utime+stime (/proc/PID/stat, children included) over the c=1 and c=16 "
        "phases and the settle after them, divided by their requests; +CPU and +p50 are medians of "
        "per-round differences from no callbacks",
        "",
        "| configuration | spans/req | req/s c=16 | vs none | per-round ratios | CPU ms/req | +CPU ms "
        "| RSS MB start → end | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for subject in subjects:
        ms = subject.measurements
        ratios = per_round(subject, baseline, "ratio")
        lines.append("| " + " | ".join([
            subject.configuration.label,
            fmt(subject.spans / subject.sent if subject.sent else float("nan"), 2),
            fmt(median(m.c16.throughput for m in ms), 1),
            fmt(median(ratios), 3) if ratios else "-",
            " ".join(fmt(r, 2) for r in ratios) or "-",
            fmt(median(m.cpu_ms_per_request for m in ms), 2),
            fmt(median(per_round(subject, baseline, "added_cpu")), 2) if baseline else "-",
            f"{fmt(subject.rss_start_mb, 0)} → {fmt(subject.rss_end_mb, 0)} "
            f"({subject.rss_end_mb - subject.rss_start_mb:+.1f})",
            str(subject.errors),
        ]) + " |")
    lines += [
        "",
        "| configuration | p50 c=1 ms | +p50 c=1 ms | p99 c=1 ms | p50 c=16 ms | p99 c=16 ms |",
        "|---|---|---|---|---|---|",
    ]
    for subject in subjects:
        ms = subject.measurements
        lines.append("| " + " | ".join([
            subject.configuration.label,
            fmt(median(m.c1.percentile_ms(50) for m in ms), 2),
            fmt(median(per_round(subject, baseline, "added_p50_c1")), 2) if baseline else "-",
            fmt(median(m.c1.percentile_ms(99) for m in ms), 2),
            fmt(median(m.c16.percentile_ms(50) for m in ms), 1),
            fmt(median(m.c16.percentile_ms(99) for m in ms), 1),
        ]) + " |")
    lines += ["", *gc_table(subjects, baseline), *own_cpu_table(subjects), "", *targets(subjects, baseline)]
    if plan.upstream != "mock":
        lines += ["", "The targets are set for the `mock_response` workload; this run's upstream is a real HTTP "
                  "call, so its verdicts are for information."]
    lines += ["", "A single run on a shared 2-core machine varies by ±15%: quote only medians of interleaved rounds, "
              "and prefer CPU ms/request, which is steadier than throughput."]
    return "\n".join(lines)


def full_collections_per_10k(subject: Subject) -> float:
    requests = sum(m.c16.sent + m.c1.sent for m in subject.measurements)
    return sum(m.gc.full for m in subject.measurements) / requests * 10_000 if requests else float("nan")


def gc_table(subjects: list[Subject], baseline: Subject | None) -> list[str]:
    """The proxy's garbage collections over the measured phases (bench/probes)."""
    lines = ["| configuration | full collections | per 10,000 requests | vs none | ms in all collections per request |",
             "|---|---|---|---|---|"]
    for subject in subjects:
        ms = subject.measurements
        requests = sum(m.c16.sent + m.c1.sent for m in ms)
        rate = full_collections_per_10k(subject)
        base = full_collections_per_10k(baseline) if baseline else float("nan")
        lines.append("| " + " | ".join([
            subject.configuration.label, str(sum(m.gc.full for m in ms)), fmt(rate, 1),
            fmt(rate / base, 2) if baseline and base else "-",
            fmt(sum(m.gc.seconds for m in ms) * 1000 / requests if requests else float("nan"), 3),
        ]) + " |")
    return lines


def own_cpu_table(subjects: list[Subject]) -> list[str]:
    """The timed plugin's own CPU per request, and its share of the same proxy's CPU per request."""
    lines = []
    for subject in subjects:
        if not subject.configuration.timed:
            continue
        if not lines:
            lines = ["", "The plugin's own CPU inside the proxy (bench/probes/timed_plugin.py; medians over rounds "
                     "of µs per request):", "",
                     "| configuration | hooks | made after: hooks read, spans and metrics | span export thread "
                     "| metric collection | total | the proxy's CPU per request | plugin's share |",
                     "|---|---|---|---|---|---|---|---|"]
        def per_request(m: Measurement, *names: str) -> float:
            requests = m.c16.sent + m.c1.sent
            return sum(m.plugin_cpu.get(name, 0) for name in names) / 1000 / requests if requests else float("nan")
        ms = subject.measurements
        kinds = ("hooks_ns", "deferred_emit_ns", "span_export_ns", "metrics_ns")
        lines.append("| " + " | ".join([
            subject.configuration.label,
            *(fmt(median(per_request(m, kind) for m in ms), 1) for kind in kinds),
            fmt(median(per_request(m, *kinds) for m in ms), 1),
            fmt(median(m.cpu_ms_per_request * 1000 for m in ms), 0),
            fmt(median(per_request(m, *kinds) / (m.cpu_ms_per_request * 1000) for m in ms) * 100, 2) + "%",
        ]) + " |")
    return lines


THROUGHPUT_TARGET, THROUGHPUT_FLOOR, ADDED_P50_TARGET_MS = 0.97, 0.95, 0.1


def targets(subjects: list[Subject], baseline: Subject | None) -> list[str]:
    by_name = {s.configuration.name: s for s in subjects}
    plugin = by_name.get("plugin")
    if plugin is None or baseline is None:
        return ["Targets: not judged (needs both `none` and `plugin`)."]
    ratios = per_round(plugin, baseline, "ratio")
    added_p50 = per_round(plugin, baseline, "added_p50_c1")
    ratio = median(ratios)

    def verdict(low: float, high: float, bound: float, at_least: bool) -> str:
        """PASS or FAIL only when the whole 95% interval of the median is on one side."""
        if math.isnan(low):
            return "UNDECIDED (too few rounds for an interval)"
        if (low >= bound) if at_least else (high <= bound):
            return "PASS"
        if (high < bound) if at_least else (low > bound):
            return "FAIL"
        return "UNDECIDED (the interval straddles the target)"

    def judged(values: list[float], bound: float, at_least: bool, digits: int, unit: str = "") -> str:
        low, high = harness.median_interval(values)
        interval = "" if math.isnan(low) else f" (95% interval of the median {fmt(low, digits)} to {fmt(high, digits)})"
        return f"{fmt(median(values), digits)}{unit}{interval} — {verdict(low, high, bound, at_least)}"

    low, high = harness.median_interval(ratios)
    throughput = ("UNDECIDED (too few rounds for an interval)" if math.isnan(low)
                  else "PASS" if ratio >= THROUGHPUT_TARGET and low > THROUGHPUT_FLOOR
                  else "FAIL" if high < THROUGHPUT_TARGET
                  else f"UNDECIDED (the median and an interval above {THROUGHPUT_FLOOR} are not both there)")
    interval = "" if math.isnan(low) else f" (95% interval of the median {fmt(low, 3)} to {fmt(high, 3)})"
    lines = ["Targets for this plugin (medians over rounds; a verdict needs the whole interval on one side):",
             f"- throughput at c={CONCURRENCY}: median ≥ {THROUGHPUT_TARGET} of no callbacks, its interval above "
             f"{THROUGHPUT_FLOOR}: {fmt(ratio, 3)}{interval} — {throughput}",
             f"- added p50 at c=1 ≤ {ADDED_P50_TARGET_MS} ms: "
             f"{judged(added_p50, ADDED_P50_TARGET_MS, False, 2, ' ms')}"]
    before = by_name.get("plugin-timed-before")
    if before is not None:  # at most half of the earlier version's added CPU
        halves = [mine / theirs for mine, theirs in zip(per_round(plugin, baseline, "added_cpu"),
                                                        per_round(before, baseline, "added_cpu"), strict=True)
                  if theirs > 0]
        lines.append("- added CPU per request ≤ 0.5 of the version at $BENCH_BEFORE's (`plugin-timed-before`; "
                     f"per-round ratios): {judged(halves, 0.5, False, 2)}")
    for name in ("otel-v1", "otel-v2"):
        if name in by_name:
            theirs = median(per_round(by_name[name], baseline, "ratio"))
            lines.append(f"- smaller loss than {BY_NAME[name].label}: {1 - ratio:.1%} vs {1 - theirs:.1%} — "
                         f"{'PASS' if ratio > theirs else 'FAIL'}")
    return lines


# --- main ------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    plan, configurations, output = parse_args(argv)
    harness.exit_cleanly_on_signals()
    dropped = harness.clear_inherited_otel_settings()
    if dropped:
        print(f"ignoring inherited settings {', '.join(sorted(dropped))}: each configuration sets its own")
    cores = harness.choose_cores()
    harness.pin_this_thread(cores.client)  # first, so the receiver process and our threads inherit it
    started, began = harness.utc_now(), time.monotonic()
    print(f"{harness.versions()}; {harness.machine()}; {cores.describe()}")
    work = Path(tempfile.mkdtemp(prefix="litellm-cost-otel-bench-"))
    subjects: list[Subject] = []
    receivers = ReceiverProcess([c.name for c in configurations])
    upstream = harness.FakeLLMProcess() if plan.upstream == "http" else None
    deployment = harness.http_deployment(upstream.base_url) if upstream else harness.mock_deployment()
    redis_server = None
    if any(configuration.budget for configuration in configurations):
        fetch_redis()
        redis_server = RedisServer(work, free_port()).start()
    try:
        for configuration in configurations:
            extra: dict[str, Any] = {}
            if configuration.team_auth:
                extra["general_settings"] = {"custom_auth": TEAM_AUTH}
            if configuration.budget and redis_server is not None:
                extra["callback_settings"] = {"litellm_cost_otel": {
                    "budgets": [{"name": "team-daily", "scope": "team", "limit_usd": 9e6, "window": "day"}],
                    "budget_store": "redis", "budget_redis_url": redis_server.url}}
            config = harness.write_proxy_config(work / f"{configuration.name}.yaml", configuration.callbacks,
                                                [deployment], extra=extra)
            env = {**configuration.env, "PYTHONFAULTHANDLER": "1"}  # a crash leaves its tracebacks in the log
            gc_probe = work / f"{configuration.name}.gc.json"
            env = harness.with_gc_probe(env, gc_probe)
            cpu_probe = work / f"{configuration.name}.cpu.json" if configuration.timed else None
            if cpu_probe is not None:
                env["BENCH_PLUGIN_CPU"] = str(cpu_probe)
            if configuration.exports:
                env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": receivers.endpoints[configuration.name],
                        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_SERVICE_NAME": f"bench-{configuration.name}"}
            print(f"starting the {configuration.name} proxy ...", flush=True)
            proxy = LiteLLMProxy(config, env, log_path=work / f"{configuration.name}.log")
            # Listed before it starts: stopped in `finally` whatever happens.
            subjects.append(Subject(configuration, proxy, gc_probe, cores.proxy, cpu_probe))
            proxy.start()
            harness.pin_process_tree(proxy.process.pid, cores.proxy)  # type: ignore[union-attr]
        try:
            asyncio.run(run_rounds(subjects, plan))
        except harness.ProxyDiedError as died:
            rounds = min(len(s.measurements) for s in subjects)
            text = f"## Side-by-side benchmark (`make bench`)\n\n**FAILED after {rounds} full rounds: {died}**"
            harness.write_section("bench", text, output)
            print("\n" + text, file=sys.stderr)
            return 1  # the proxies' logs stay where the message says
        for subject in subjects:
            subject.rss_end_mb = harness.rss_mb(subject.proxy.process.pid)  # type: ignore[union-attr]
        wait_for_quiet_receivers(receivers, quiet_s=6.0, limit_s=30.0)
        for subject in subjects:
            subject.proxy.stop()  # SIGTERM: the plugin flushes what is left
        counts = wait_for_quiet_receivers(receivers, quiet_s=1.0, limit_s=10.0)
        for subject in subjects:
            subject.spans = counts.get(subject.configuration.name, 0)
        text = report(subjects, plan, cores, started, (time.monotonic() - began) / 60)
        harness.write_section("bench", text, output)
        print("\n" + text + f"\n\nwritten to {output}")
    except BaseException:
        print(f"proxy logs kept in {work}", file=sys.stderr)
        raise
    finally:
        for subject in subjects:
            with contextlib.suppress(Exception):
                subject.proxy.stop()
                subject.proxy.client.close()
        receivers.stop()
        if upstream is not None:
            upstream.stop()
        if redis_server is not None:
            redis_server.stop()
    for log in work.iterdir():  # a clean run leaves nothing behind
        log.unlink()
    work.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
