"""Switchable failures for the Glimpse emulator. A test arms them; matching requests take them:

    world.faults.fail(503)                           # the next request answers 503
    world.faults.fail(500, times=2, path="/posts")   # the next two requests to .../posts...
    world.faults.hang(2.0, path="/like")             # answer only after 2 s (past a timeout)
    world.faults.garbage(path="/agents/me")          # 200 with an HTML body

``path`` matches as a substring of the URL path, ``method`` exactly. A hung request is then
served normally (the write happens even though the client gave up, as on a real server).
Armed from the test thread, taken in the server thread: every method takes a lock.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["status", "hang", "garbage"]


@dataclass
class Fault:
    """One armed failure, good for ``times`` more matching requests."""

    kind: FaultKind
    times: int = 1
    status: int = 503
    seconds: float = 5.0
    path: str | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path is None or self.path in path
        )


class GlimpseFaults:
    """The queue of armed faults, first armed first taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []
        self._released = threading.Event()
        self.served = 0

    def fail(
        self,
        status: int = 503,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """The next ``times`` matching requests answer ``status`` with an error body."""
        return self._arm(Fault("status", times, status=status, path=path, method=method))

    def hang(
        self,
        seconds: float = 5.0,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """The next ``times`` matching requests wait ``seconds`` (real time) before answering."""
        return self._arm(Fault("hang", times, seconds=seconds, path=path, method=method))

    def garbage(
        self, *, times: int = 1, path: str | None = None, method: str | None = None
    ) -> Fault:
        """The next ``times`` matching requests answer 200 with a body that is not JSON."""
        return self._arm(Fault("garbage", times, path=path, method=method))

    def _arm(self, fault: Fault) -> Fault:
        with self._lock:
            self._armed.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(f.times for f in self._armed)

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching this request, spending one of its ``times``."""
        with self._lock:
            for fault in self._armed:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._armed.remove(fault)
                    self.served += 1
                    return fault
        return None

    def release(self) -> None:
        """End every current and future hang at once (call before stopping the server)."""
        self._released.set()

    async def wait(self, seconds: float) -> None:
        """Wait ``seconds`` of real time without blocking the server, waking early once
        released (a thread waits on the event: tests release from their own thread)."""
        await asyncio.to_thread(self._released.wait, seconds)
