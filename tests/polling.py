"""Waiting for something a test caused elsewhere (another process, a replica, a thread)."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(check: Callable[[], object], deadline_s: float, what: str, every_s: float = 0.01) -> float:
    """Poll `check` until it is true; the seconds it took. Fails past the deadline, naming
    `what`. A deadline bounds a wait; it is not a timing assertion."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < deadline_s, f"{what}: not within {deadline_s} s"
        time.sleep(every_s)
    return time.monotonic() - start
