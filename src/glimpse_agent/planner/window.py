"""Active hours as real instants: the one place that turns the persona's wall-clock times into UTC.

The DST rule — one rule for every wall time the planner converts (window edges, midnight):

    A local wall time on a given day maps to the FIRST INSTANT at which the local clock
    shows that time or later.

So:

- a time that does not exist (inside a spring-forward gap, e.g. 02:30 in Europe/Paris on
  2026-03-29, when clocks jump from 02:00 to 03:00) maps to the instant of the jump
  (03:00 CEST = 01:00 UTC): the window opens as soon as the clock has passed 02:30;
- a time that happens twice (inside a fall-back hour, e.g. 02:30 in Europe/Paris on
  2026-10-25) maps to its first occurrence (``fold=0``: 02:30 CEST = 00:30 UTC).

The mapping never decreases as the wall time increases, so a window never ends before it
starts; a window whose two edges fall in the same gap is empty (start == end). All returned
datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from glimpse_agent.persona import Persona


def wall_to_utc(local_day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clock in ``zone`` shows ``local_day wall`` or later."""
    naive = datetime.combine(local_day, wall.replace(tzinfo=None))
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == naive:
        # It exists; if it is ambiguous, fold=0 is already its first occurrence.
        return first
    # In a gap, fold=0 applies the offset from before the jump (landing after it) and fold=1
    # the offset from after it (landing before it); the jump lies in between. tzdata
    # transitions fall on whole seconds, so a bisection on seconds finds it exactly.
    lo = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)  # clock shows < naive here
    hi = first  # clock shows >= naive here
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + timedelta(seconds=(hi - lo).total_seconds() // 2)
        if _wall(mid, zone) >= naive:
            hi = mid
        else:
            lo = mid
    return hi


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def crosses_midnight(persona: Persona) -> bool:
    """True when the window ends on the next local day (its end is before its start)."""
    return persona.active_end < persona.active_start


def active_window(persona: Persona, local_day: date) -> tuple[datetime, datetime]:
    """UTC start and end of the active window that opens on ``local_day`` (end exclusive).

    A window whose end is before its start (e.g. 20:00-03:00) closes on the next local day.
    DST edges follow the module rule; the result always has ``start <= end``.
    """
    zone = persona.zone
    start = wall_to_utc(local_day, persona.active_start, zone)
    end_day = local_day + timedelta(days=1) if crosses_midnight(persona) else local_day
    end = wall_to_utc(end_day, persona.active_end, zone)
    return start, max(start, end)


def is_active(persona: Persona, now: datetime) -> bool:
    """Whether ``now`` (aware) is inside an active window (today's or yesterday's overnight one)."""
    today = _local_date(persona, now)
    for day in (today - timedelta(days=1), today):
        start, end = active_window(persona, day)
        if start <= now < end:
            return True
    return False


def days_to_plan(persona: Persona, now: datetime) -> tuple[date, ...]:
    """Local days whose windows are still worth planning at ``now``, oldest first.

    Normally just today. With an overnight window, yesterday's window may still be open after
    local midnight (at 01:00 a 20:00-03:00 persona is in *yesterday's* window): a process that
    starts then must plan yesterday too, or it would sit idle until 20:00. Re-planning a day
    is idempotent (same slot ids and times), so planning both is always safe.
    """
    today = _local_date(persona, now)
    yesterday = today - timedelta(days=1)
    _, end = active_window(persona, yesterday)
    return (yesterday, today) if now < end else (today,)


def next_local_midnight(persona: Persona, now: datetime) -> datetime:
    """The next instant (UTC, strictly after ``now``) at which the persona's local date changes.

    Where midnight itself is skipped by a DST jump, this is the instant of the jump.
    """
    zone = persona.zone
    day = _local_date(persona, now) + timedelta(days=1)
    first = wall_to_utc(day, time(0, 0), zone)
    if first > now:
        return first
    # Only reachable where clocks fall back across midnight and ``now`` is in the repeated
    # hour: the date changes again at the second occurrence of that midnight.
    return datetime.combine(day, time(0, 0), tzinfo=zone).replace(fold=1).astimezone(UTC)


def _local_date(persona: Persona, now: datetime) -> date:
    _require_aware(now)
    return now.astimezone(persona.zone).date()


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {now!r}")
