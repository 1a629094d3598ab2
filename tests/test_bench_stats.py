"""The benchmark's confidence interval of the median, which its PASS/FAIL verdicts rest on."""

from __future__ import annotations

import math

from bench.harness import median_interval


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
