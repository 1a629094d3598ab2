"""Waiting for something a background process does (an export, a scrape), by polling."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 15.0,
               interval: float = 0.2) -> T:
    """`read()` until `done` holds for its value or `timeout` seconds pass; the last value
    either way, for the caller to assert on (so a failure shows what was there)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)
