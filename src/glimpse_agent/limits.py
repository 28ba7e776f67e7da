"""Glimpse's rate-limit table and the persona's daily caps, as pure functions of datetimes.

Nothing here does I/O or reads a clock: callers pass ``now`` and the events they recorded. That
keeps every rule testable with plain datetimes and lets ``simulate`` run a month in seconds.

Rules the functions rely on:

- Minute and hour windows *slide*: a window counts the events in ``(now - period, now]``. An
  event recorded "after" ``now`` (the clock stepped back) also counts, to err on the side of
  fewer calls.
- Daily windows are calendar days in UTC: they reset at midnight UTC, as Glimpse's do.
- A persona cap is one more daily window on the same bucket (replies count as ``comments``).
- A ``ServerView`` (the ``X-RateLimit-*`` headers) can only *tighten* what we think is left, and
  only until its reset time.
- A 429's ``Retry-After`` blocks the bucket outright until then: 0 left, no blind retries.
- A server's block or reset is believed only as far as the bucket's longest window reaches
  (``latest_block``): a ``Retry-After`` of ten years is a server's mistake, not a reason to
  stop posting until 2036.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal

from glimpse_agent.persona import Persona

Per = Literal["minute", "hour", "day"]

#: How many failed or discarded generations a persona may spend per day on top of its posts.
GENERATION_RETRY_ALLOWANCE = 2


@dataclass(frozen=True)
class Window:
    """At most ``limit`` events per ``per``; minute/hour slide, a day is a UTC calendar day."""

    limit: int
    per: Per

    @property
    def span(self) -> timedelta | None:
        """Length of a sliding window; ``None`` for a calendar day."""
        return {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}.get(self.per)


#: The per-agent limits published by Glimpse. Bucket names are the keys used everywhere else.
PLATFORM: Mapping[str, tuple[Window, ...]] = {
    "generation": (Window(10, "minute"), Window(6, "day")),
    "posts": (Window(10, "hour"), Window(6, "day")),
    "comments": (Window(30, "hour"),),
    "reactions": (Window(60, "hour"),),
    "follows": (Window(30, "hour"),),
    "settings": (Window(10, "minute"),),
    "registration": (Window(5, "hour"),),
}
BUCKETS: tuple[str, ...] = tuple(PLATFORM)


@dataclass(frozen=True)
class ServerView:
    """What the server last said about a bucket (``X-RateLimit-Limit/-Remaining/-Reset``)."""

    limit: int
    remaining: int
    reset: datetime
    observed_at: datetime


@dataclass(frozen=True)
class BucketUsage:
    """Everything known about one bucket: our own events, the server's view, a 429 block."""

    events: Sequence[datetime] = ()
    server: ServerView | None = None
    blocked_until: datetime | None = None


def check_bucket(bucket: str) -> str:
    """``bucket`` if Glimpse has it; a typo raises ``ValueError`` rather than never counting."""
    if bucket not in PLATFORM:
        raise ValueError(f"unknown rate-limit bucket {bucket!r}; expected one of {BUCKETS}")
    return bucket


#: How far past its window's own end a server's block or reset is still believed: room for a
#: server whose clock or counters run a little behind ours.
BLOCK_MARGIN = timedelta(minutes=10)
#: The longest block a bucket whose windows are all a minute long is believed for.
MINUTE_BLOCK_MAX = timedelta(hours=1)
#: The longest block for a bucket the table does not know (Glimpse's read limits).
UNKNOWN_BLOCK_MAX = timedelta(days=1)


def latest_block(bucket: str, now: datetime) -> datetime:
    """The latest instant a server's 429 or ``X-RateLimit-Reset`` may block ``bucket`` until,
    seen at ``now``: a daily bucket until the next midnight UTC (+ ``BLOCK_MARGIN``), an hourly
    one an hour (+ margin), a minute one ``MINUTE_BLOCK_MAX``, any other a day."""
    pers = {w.per for w in PLATFORM.get(bucket, ())}
    if "day" in pers:
        return next_midnight(now) + BLOCK_MARGIN
    if "hour" in pers:
        return now + timedelta(hours=1) + BLOCK_MARGIN
    if "minute" in pers:
        return now + MINUTE_BLOCK_MAX
    return now + UNKNOWN_BLOCK_MAX


def clamp_block(bucket: str, until: datetime, now: datetime) -> datetime:
    """``until``, or ``latest_block(bucket, now)`` if it lies beyond that."""
    return min(until, latest_block(bucket, now))


def persona_caps(persona: Persona, *, retries: int = GENERATION_RETRY_ALLOWANCE) -> dict[str, int]:
    """The persona's own per-UTC-day caps, by bucket (comments and replies share ``comments``)."""
    daily_generation = next(w.limit for w in PLATFORM["generation"] if w.per == "day")
    return {
        "posts": persona.posts_per_day,
        "reactions": persona.engagement.likes_per_day,
        "comments": persona.engagement.comments_per_day,
        "follows": persona.engagement.follows_per_day,
        "generation": min(daily_generation, persona.posts_per_day + retries),
    }


def windows(bucket: str, caps: Mapping[str, int] | None = None) -> tuple[Window, ...]:
    """The platform's windows for ``bucket`` plus the persona's daily cap, if any."""
    found = PLATFORM[check_bucket(bucket)]
    if caps and bucket in caps:
        found = (*found, Window(caps[bucket], "day"))
    return found


def day_start(at: datetime) -> datetime:
    """Midnight UTC at the start of ``at``'s UTC day."""
    return datetime.combine(at.astimezone(UTC).date(), time(0), tzinfo=UTC)


def next_midnight(at: datetime) -> datetime:
    """The first midnight UTC strictly after ``at``."""
    return day_start(at) + timedelta(days=1)


def _in_window(window: Window, events: Iterable[datetime], now: datetime) -> list[datetime]:
    span = window.span
    start = day_start(now) if span is None else now - span
    if span is None:
        # A calendar day is [midnight, next midnight); later days are not "today".
        end = start + timedelta(days=1)
        return sorted(e for e in events if start <= e < end)
    return sorted(e for e in events if e > start)


def _server_left(
    server: ServerView | None, events: Iterable[datetime], now: datetime
) -> int | None:
    """What the server's view leaves now, or ``None`` once it has expired (reset has passed)."""
    if server is None or server.reset <= now:
        return None
    since = sum(1 for e in events if e > server.observed_at)
    return max(0, server.remaining - since)


def remaining(
    bucket: str,
    events: Sequence[datetime],
    now: datetime,
    caps: Mapping[str, int] | None = None,
    *,
    server: ServerView | None = None,
    blocked_until: datetime | None = None,
) -> int:
    """How many more ``bucket`` actions are allowed at ``now``: the minimum over every window,
    tightened by a live server view, and 0 while a 429 block lasts."""
    if blocked_until is not None and now < blocked_until:
        return 0
    left = min(w.limit - len(_in_window(w, events, now)) for w in windows(bucket, caps))
    from_server = _server_left(server, events, now)
    if from_server is not None:
        left = min(left, from_server)
    return max(0, left)


def next_free(
    bucket: str,
    events: Sequence[datetime],
    now: datetime,
    caps: Mapping[str, int] | None = None,
    *,
    server: ServerView | None = None,
    blocked_until: datetime | None = None,
) -> datetime | None:
    """The earliest instant ``>= now`` at which one ``bucket`` action is allowed, assuming no
    further events: ``now`` itself if one is allowed already, the next midnight UTC when a daily
    window is full, and ``None`` if a window's limit is 0 (it never frees up)."""
    all_windows = windows(bucket, caps)
    if any(w.limit <= 0 for w in all_windows):
        return None
    at = now
    # Each pass moves ``at`` to when the tightest blocker lets go; freeing one window cannot fill
    # another (no new events), so this settles within a few passes.
    for _ in range(len(all_windows) + 3):
        waits: list[datetime] = []
        if blocked_until is not None and at < blocked_until:
            waits.append(blocked_until)
        for w in all_windows:
            inside = _in_window(w, events, at)
            if len(inside) >= w.limit:
                span = w.span
                # Sliding: free once the (count - limit + 1)-th oldest event slides out.
                waits.append(
                    next_midnight(at) if span is None else inside[len(inside) - w.limit] + span
                )
        from_server = _server_left(server, events, at)
        if from_server == 0 and server is not None:
            waits.append(server.reset)
        if not waits:
            return at
        at = max(waits)
    return at


def remaining_all(
    usage: Mapping[str, BucketUsage],
    now: datetime,
    caps: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """What is left in every Glimpse bucket at ``now`` (a bucket not in ``usage`` is unused)."""
    out: dict[str, int] = {}
    for bucket in BUCKETS:
        u = usage.get(bucket, BucketUsage())
        out[bucket] = remaining(
            bucket, u.events, now, caps, server=u.server, blocked_until=u.blocked_until
        )
    return out
