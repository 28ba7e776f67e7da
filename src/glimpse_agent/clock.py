"""The one source of "now". Real time for the daemon, simulated time for simulate/sandbox/tests.

Every clock returns timezone-aware UTC datetimes; local times are derived with ``zoneinfo``.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Wall-clock time: the only place the daemon and the `status`/`plan`/`once` commands
    read it."""

    def now(self) -> datetime:
        # Looked up at each call (never a ``datetime.now`` bound at import), so freezegun's
        # patched ``datetime`` is what tests of the real-clock commands move.
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimulatedClock:
    """A clock that only moves when told to. ``sleep`` advances it instantly.

    Thread-safe, because the emulators read it from their server thread while tests move it.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (a timedelta or seconds); returns the new now."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("time does not go backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware); it must not be in this clock's past."""
        when = when.astimezone(UTC)
        with self._lock:
            if when < self._now:
                raise ValueError("time does not go backwards")
            self._now = when

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A short way to write an aware UTC datetime (tests, simulate)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
