"""Shared parts of the benchmarks: proxy configs, CPU pinning, readings from /proc, a
closed-loop load generator, and the results file."""

from __future__ import annotations

import asyncio
import datetime
import importlib.metadata
import json
import math
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

PLUGIN = "litellm_cost_otel.proxy_handler_instance"
REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results.md")
RESULTS_TITLE = ("# Benchmark results\n\n"
                 "Written by `make bench`, `make bench-micro` and `make soak` (see bench/README.md).\n")
CHAT_PATH = "/v1/chat/completions"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Variables that would change what a configuration measures; each run sets its own.
_OWN_VARIABLE_PREFIXES = ("OTEL_", "LITELLM_OTEL", "LITELLM_COST_OTEL_")


# --- proxy configs ---------------------------------------------------------------------------

def mock_deployment(group: str = "fast") -> dict[str, Any]:
    """A deployment answered by litellm's mock_response: no network, the proxy's own work only."""
    return {"model_name": group, "litellm_params": {"model": "mistral/mistral-small-latest", "api_key": "x",
                                                    "mock_response": "hi"}}


def http_deployment(api_base: str, group: str = "fast") -> dict[str, Any]:
    """A deployment that calls an OpenAI-compatible server: a real upstream HTTP call, priced."""
    return {"model_name": group, "litellm_params": {"model": "openai/local-model", "api_base": api_base,
                                                    "api_key": "x", "input_cost_per_token": 0.0000002,
                                                    "output_cost_per_token": 0.0000006}}


def line_within(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The next line a helper process prints, or "" if none comes within `timeout_s`."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    return process.stdout.readline() if ready else ""


class FakeLLMProcess:
    """The repo's fake OpenAI-compatible server in a process of its own (so that its work never
    holds the load generator's GIL); it inherits the caller's CPU affinity."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self._process = subprocess.Popen(  # port 0: it binds a free one and prints its URL
            [sys.executable, "-m", "litellm_cost_otel.devtools.fake_llm", "0"], stdout=subprocess.PIPE, text=True)
        self.base_url = line_within(self._process, timeout_s).strip()
        if not self.base_url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the fake LLM server did not start within {timeout_s:g} s")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def write_proxy_config(path: Path, callbacks: Sequence[str], model_list: list[dict[str, Any]],
                       router_settings: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """A proxy config; `extra`'s sections are merged in (general_settings key by key)."""
    config: dict[str, Any] = {
        "model_list": model_list,
        "litellm_settings": {"callbacks": list(callbacks)} if callbacks else {},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }
    if router_settings:
        config["router_settings"] = router_settings
    for section, values in (extra or {}).items():
        config[section] = {**config.get(section, {}), **values}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def clear_inherited_otel_settings() -> list[str]:
    """Drop OTEL_* and the plugin's variables from this process's environment (the proxies
    inherit it), so every configuration runs with exactly the settings it names."""
    dropped = [name for name in os.environ if name.startswith(_OWN_VARIABLE_PREFIXES)]
    for name in dropped:
        del os.environ[name]
    return dropped


# --- CPUs and /proc --------------------------------------------------------------------------

@dataclass(frozen=True)
class Cores:
    """The proxy gets one core to itself; the client side (load, receiver) gets the others."""

    proxy: frozenset[int]
    client: frozenset[int]

    @property
    def pinned(self) -> bool:
        return bool(self.proxy)

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned (fewer than 2 cores available)"
        return f"proxy on core {sorted(self.proxy)}, client and receiver on cores {sorted(self.client)}"


def choose_cores() -> Cores:
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return Cores(frozenset(), frozenset())
    return Cores(frozenset(available[:1]), frozenset(available[1:]))


def pin_this_thread(cores: frozenset[int]) -> None:
    """Pin the calling thread; threads and processes it starts later inherit the affinity.
    Call it first thing, before any thread exists."""
    if cores:
        os.sched_setaffinity(0, cores)


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after "(comm)" (which may contain spaces): field 3 on."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def process_tree(pid: int) -> list[int]:
    """pid and its live descendants (by parent pid: /proc/PID/task/*/children is not always there)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, pending = [], [pid]
    while pending and len(found) < 1000:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def pin_process_tree(pid: int, cores: frozenset[int]) -> None:
    """What `taskset -a -c CORES -p PID` does, for the process and its descendants: every
    existing thread; threads started later inherit it."""
    if not cores:
        return
    for process in process_tree(pid):
        try:
            for task in os.listdir(f"/proc/{process}/task"):
                try:
                    os.sched_setaffinity(int(task), cores)
                except ProcessLookupError:  # the thread ended meanwhile
                    pass
        except FileNotFoundError:
            pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its descendants, live and reaped (/proc/PID/stat
    utime, stime, cutime, cstime)."""
    ticks = 0
    for process in process_tree(pid):
        fields = _stat_fields(process)
        if fields is not None:
            ticks += sum(int(value) for value in fields[11:15])  # fields 14-17 of proc(5)
    return ticks / _CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of the process and its descendants (VmRSS of /proc/PID/status)."""
    kilobytes = 0
    for process in process_tree(pid):
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kilobytes += int(line.split()[1])
        except FileNotFoundError:
            continue
    return kilobytes / 1024


PROBES = Path(__file__).with_name("probes")  # on every proxy's path: sitecustomize.py counts its collections


def with_gc_probe(env: dict[str, str], totals_path: Path) -> dict[str, str]:
    """A proxy's environment with the garbage-collection probe loaded (bench/probes)."""
    python_path = os.pathsep.join(part for part in (str(PROBES), env.get("PYTHONPATH", "")) if part)
    return {**env, "PYTHONPATH": python_path, "BENCH_GC_PROBE": str(totals_path)}


@dataclass(frozen=True)
class GcTotals:
    """The probe's running totals: full (generation 2) collections, and seconds in all collections."""

    full: int = 0
    seconds: float = 0.0

    def __sub__(self, other: GcTotals) -> GcTotals:
        return GcTotals(self.full - other.full, self.seconds - other.seconds)

    def __add__(self, other: GcTotals) -> GcTotals:
        return GcTotals(self.full + other.full, self.seconds + other.seconds)


def gc_totals(totals_path: Path) -> GcTotals:
    """What the probe wrote last (four times a second); zeros before its first write."""
    try:
        found = json.loads(totals_path.read_text())
    except (FileNotFoundError, ValueError):
        return GcTotals()
    return GcTotals(int(found["collections"][2]), float(sum(found["seconds"])))


def plugin_cpu(totals_path: Path) -> dict[str, int]:
    """What bench/probes/timed_plugin.py wrote last: ns of the plugin's own CPU by kind, and events."""
    try:
        return {name: int(value) for name, value in json.loads(totals_path.read_text()).items()}
    except (FileNotFoundError, ValueError):
        return {}


def difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: value - before.get(name, 0) for name, value in after.items()}


def total(one: dict[str, int], other: dict[str, int]) -> dict[str, int]:
    return {name: one.get(name, 0) + other.get(name, 0) for name in {*one, *other}}


# --- load ------------------------------------------------------------------------------------

@dataclass
class LoadResult:
    """One closed-loop phase: the latency of every successful request, and the failures."""

    concurrency: int
    sent: int = 0
    errors: int = 0
    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    timed_out: bool = False  # the phase hit its time limit before sending everything

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.wall_s if self.wall_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def median(values: Iterable[float]) -> float:
    kept = [value for value in values if not math.isnan(value)]
    return statistics.median(kept) if kept else math.nan


def median_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval for the median: the order statistics that
    bracket it with at least `confidence` (binomial, p = 1/2); NaNs for too few values."""
    ordered = sorted(value for value in values if not math.isnan(value))
    n = len(ordered)
    tail = (1 - confidence) / 2
    below = 0.0  # P(Binomial(n, 1/2) < k), for the largest k that keeps it within the tail
    k = 0
    while k < n and below + math.comb(n, k) / 2**n <= tail:
        below += math.comb(n, k) / 2**n
        k += 1
    if k == 0:  # even the extremes do not reach the confidence asked for
        return math.nan, math.nan
    return ordered[k - 1], ordered[n - k]


def client_session(master_key: str, concurrency: int, timeout_s: float = 30.0) -> aiohttp.ClientSession:
    """Keep-alive connections to one proxy, at most `concurrency` of them."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), timeout=aiohttp.ClientTimeout(total=timeout_s),
        headers={"Authorization": f"Bearer {master_key}", "Content-Type": "application/json"})


def chat_body(group: str = "fast", content: str = "hi", stream: bool = False) -> bytes:
    import json

    return json.dumps({"model": group, "messages": [{"role": "user", "content": content}],
                       "stream": stream}).encode()


Sender = Callable[[int], Awaitable[bool]]  # sends request number i; True when it succeeded


async def timed(send: Sender, number: int, result: LoadResult) -> None:
    """Sends one request and adds its latency, or its failure, to `result`."""
    began = time.perf_counter()
    try:
        succeeded = await send(number)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        succeeded = False
    result.sent += 1
    if succeeded:
        result.latencies_s.append(time.perf_counter() - began)
    else:
        result.errors += 1


async def closed_loop(send: Sender, total: int, concurrency: int, time_limit_s: float) -> LoadResult:
    """`concurrency` workers, each sending its next request as soon as the last one answered,
    until `total` requests are sent or the time limit passes."""
    result = LoadResult(concurrency)
    next_number = 0
    start = time.perf_counter()
    deadline = start + time_limit_s

    async def worker() -> None:
        nonlocal next_number
        while next_number < total:
            if time.perf_counter() > deadline:
                result.timed_out = True
                return
            number, next_number = next_number, next_number + 1
            await timed(send, number, result)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall_s = time.perf_counter() - start
    return result


async def alternating(sends: list[Sender], total_each: int, gap_s: float, time_limit_s: float) -> list[LoadResult]:
    """One request at a time, taking the senders in turn, `gap_s` after each answer: each
    sender's requests are measured at the same moments as the others', so the machine's drift
    hits every sender alike; the gap lets whatever a proxy does after answering (a success
    callback, say) finish before the next request, to any proxy, starts. Each cycle starts one
    sender further on (A B C, B C A, C A B, ...), so no sender always comes first."""
    results = [LoadResult(1) for _ in sends]
    pairs = list(zip(sends, results, strict=True))
    start = time.perf_counter()
    deadline = start + time_limit_s
    for number in range(total_each):
        first = number % len(pairs)
        for send, result in pairs[first:] + pairs[:first]:
            if time.perf_counter() > deadline:
                result.timed_out = True
                continue
            await timed(send, number, result)
            await asyncio.sleep(gap_s)
    for result in results:
        result.wall_s = time.perf_counter() - start
    return results


def chat_sender(session: aiohttp.ClientSession, base_url: str, body: bytes) -> Sender:
    """Sends the same non-streaming chat request each time and reads the whole answer."""
    url = base_url + CHAT_PATH

    async def send(number: int) -> bool:
        async with session.post(url, data=body) as response:
            await response.read()
            return response.status == 200

    return send


def phase_time_limit(requests: int) -> float:
    """Generous: a phase slower than 5 requests a second has gone wrong."""
    return 60.0 + requests / 5.0


# --- process hygiene -------------------------------------------------------------------------

class ProxyDiedError(RuntimeError):
    """A proxy exited in the middle of a run (a crash is a result too: it gets reported)."""


def check_alive(proxy: Any) -> None:
    """Stop the run, instead of reading the memory of a process that is gone."""
    code = proxy.process.poll() if proxy.process is not None else None
    if code is not None:
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        raise ProxyDiedError(f"the proxy died ({how}) in the middle of the run; its log: {proxy.log_path} "
                        "(PYTHONFAULTHANDLER=1 puts a crash's tracebacks there; `dmesg` names the library)")


def exit_cleanly_on_signals() -> None:
    """Ctrl-C and SIGTERM unwind the run, so every `finally` stops what it started (SIGINT
    too when started in the background, where the shell would have it ignored)."""
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)


# --- the results file ------------------------------------------------------------------------

def versions() -> str:
    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    return (f"litellm {version('litellm')}, opentelemetry-sdk {version('opentelemetry-sdk')}, "
            f"Python {platform.python_version()}")


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except FileNotFoundError:
        pass
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores{f' ({model})' if model else ''}, load average {one:.2f} / {five:.2f}"


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace this benchmark's own section of the results file, leaving the others as they are."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else RESULTS_TITLE
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def fmt(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"
