"""The benchmark's confidence interval of the median, which its PASS/FAIL verdicts rest on, its
alternating lone-request phase, which its latency differences rest on, and the probe that
counts a proxy's garbage collections."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import GcTotals, Sender, alternating, gc_totals, median_interval, with_gc_probe


def test_the_interval_is_the_binomial_order_statistics() -> None:
    assert median_interval([0.93, 0.91, 1.05, 0.92, 0.95, 0.91]) == (0.91, 1.05)  # 6: min and max
    assert median_interval(list(range(12))) == (2, 9)  # 12: the 3rd and the 10th
    assert median_interval(list(range(26))) == (7, 18)  # 26: the 8th and the 19th
    assert median_interval(list(range(12)), confidence=0.99) == (1, 10)


def test_too_few_rounds_give_no_interval() -> None:
    assert all(math.isnan(bound) for bound in median_interval([0.9, 0.95, 1.0, 0.97, 0.92]))  # 5 < 6
    assert all(math.isnan(bound) for bound in median_interval([]))
    # A NaN round (no throughput measured) is left out, not counted.
    assert all(math.isnan(bound) for bound in median_interval([1.0] * 5 + [math.nan]))


def test_lone_requests_alternate_one_at_a_time_with_the_gap_after_each() -> None:
    log: list[tuple[str, str, int, float]] = []

    def sender(name: str, fails: set[int]) -> Sender:
        async def send(number: int) -> bool:
            log.append(("start", name, number, time.perf_counter()))
            await asyncio.sleep(0.001)
            log.append(("end", name, number, time.perf_counter()))
            return number not in fails
        return send

    results = asyncio.run(alternating([sender("a", set()), sender("b", {1})], 3, gap_s=0.02, time_limit_s=30))
    starts = [(name, number) for event, name, number, _ in log if event == "start"]
    assert starts == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]  # each cycle rotated
    assert [event for event, *_ in log] == ["start", "end"] * 6  # never two requests at once
    idle = [log[i + 1][3] - log[i][3] for i in range(1, len(log) - 1, 2)]  # each end to the next start
    assert min(idle) >= 0.02
    assert [(r.sent, r.errors, len(r.latencies_s)) for r in results] == [(3, 0, 3), (3, 1, 2)]
    assert all(latency >= 0.001 for r in results for latency in r.latencies_s)


def test_the_gc_probe_counts_a_processs_full_collections(tmp_path: Path) -> None:
    totals = tmp_path / "gc.json"
    assert gc_totals(totals) == GcTotals()  # before the probe's first write
    env = with_gc_probe({**os.environ, "PYTHONPATH": "/elsewhere"}, totals)
    assert env["PYTHONPATH"].endswith(os.pathsep + "/elsewhere")  # the configuration's own path kept
    program = ("import gc, time\nfor _ in range(3): gc.collect()\n"
               "time.sleep(0.6)\nprint(gc.get_stats()[2]['collections'])")
    run = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True,
                         timeout=60)
    found = gc_totals(totals)
    assert found.full == int(run.stdout) >= 3 and found.seconds > 0
    assert found - GcTotals(1, found.seconds) == GcTotals(found.full - 1, 0.0)
