"""Waiting for a real process to reach a state, for tests that run the daemon as one."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float) -> bool:
    """True as soon as ``predicate()`` is truthy, False once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
