"""The emulated Glimpse's rate limiter: the published table, enforced per agent (per IP for
registration and anonymous reads).

Minute and hour windows slide (an event counts for exactly one period after it happened);
daily windows are UTC calendar days and reset at midnight UTC. Written independently of the
client's ``glimpse_agent.limits`` on purpose: a shared mistake would go unnoticed.
Not thread-safe by itself: the world calls it under its lock.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """``limit`` events per ``span`` (sliding), or per UTC day when ``span`` is None."""

    limit: int
    span: timedelta | None = None

    @property
    def daily(self) -> bool:
        return self.span is None


#: The seed page's table. "read" is ours: reads need *some* ceiling, and a generous one.
LIMITS: dict[str, tuple[Window, ...]] = {
    "generation": (Window(10, MINUTE), Window(6)),
    "posts": (Window(10, HOUR), Window(6)),
    "comments": (Window(30, HOUR),),
    "reactions": (Window(60, HOUR),),
    "follows": (Window(30, HOUR),),
    "registration": (Window(5, HOUR),),
    "settings": (Window(10, MINUTE),),
    "read": (Window(600, MINUTE),),
}


@dataclass(frozen=True)
class WindowState:
    """One window of one bucket for one caller, at one instant."""

    window: Window
    used: int
    reset: datetime  # when a slot frees (sliding) or the count restarts (daily)

    @property
    def remaining(self) -> int:
        return max(0, self.window.limit - self.used)


@dataclass(frozen=True)
class BucketState:
    """What the ``X-RateLimit-*`` headers (and a 429) say about one bucket."""

    bucket: str
    windows: tuple[WindowState, ...]

    @property
    def blocking(self) -> tuple[WindowState, ...]:
        return tuple(w for w in self.windows if w.remaining == 0)

    @property
    def headline(self) -> WindowState:
        """The window the headers describe: the exhausted one that frees last, otherwise the
        one with the fewest calls left (so a fresh ``posts`` bucket reads 6 left, not 10)."""
        if self.blocking:
            return max(self.blocking, key=lambda w: w.reset)
        return min(self.windows, key=lambda w: (w.remaining, -w.reset.timestamp()))

    def retry_after(self, now: datetime) -> float:
        """Seconds until every exhausted window has a free slot again."""
        return max(((w.reset - now).total_seconds() for w in self.blocking), default=0.0)


def next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + DAY, time(0), tzinfo=now.tzinfo)


class Limiter:
    """Counts events per (caller, bucket) and answers what is left."""

    def __init__(self, limits: dict[str, tuple[Window, ...]] | None = None) -> None:
        self.limits = dict(LIMITS if limits is None else limits)
        self._events: dict[tuple[str, str], list[datetime]] = defaultdict(list)

    def state(self, who: str, bucket: str, now: datetime) -> BucketState:
        events = self._events.get((who, bucket), [])
        windows = []
        for window in self.limits[bucket]:
            if window.span is None:
                inside = [e for e in events if e.date() == now.date()]
                reset = next_midnight(now)
            else:
                inside = [e for e in events if e > now - window.span]
                reset = (min(inside) if inside else now) + window.span
            windows.append(WindowState(window, len(inside), reset))
        return BucketState(bucket, tuple(windows))

    def record(self, who: str, bucket: str, now: datetime) -> None:
        events = self._events[(who, bucket)]
        events.append(now)
        # Nothing older than a day (plus the longest sliding span) can matter again.
        horizon = now - DAY - HOUR
        if events[0] < horizon:
            events[:] = [e for e in events if e >= horizon]

    def describe(self, who: str, now: datetime) -> dict[str, Any]:
        """Every bucket's windows for ``GET /agents/{id}/limits``."""
        out: dict[str, Any] = {}
        for bucket in self.limits:
            state = self.state(who, bucket, now)
            head = state.headline
            out[bucket] = {
                "limit": head.window.limit,
                "remaining": head.remaining,
                "resets_at": iso(head.reset),
                "windows": [
                    {
                        "period": _period(w.window),
                        "limit": w.window.limit,
                        "used": w.used,
                        "remaining": w.remaining,
                        "resets_at": iso(w.reset),
                    }
                    for w in state.windows
                ],
            }
        return out


def _period(window: Window) -> str:
    return "day" if window.span is None else f"{int(window.span.total_seconds())}s"


def iso(when: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as JSON APIs usually write it."""
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{when.microsecond // 1000:03d}Z"
