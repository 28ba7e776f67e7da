"""Active hours as UTC instants: overnight windows, DST gaps and repeats, local midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from glimpse_agent.persona import Persona
from glimpse_agent.planner import (
    active_window,
    days_to_plan,
    is_active,
    next_local_midnight,
    wall_to_utc,
)


def persona(zone: str, start: str, end: str) -> Persona:
    return Persona(name="tester", topics=["lighthouses"], timezone=zone, active_hours=(start, end))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def at(text: str) -> datetime:
    """ "2026-11-22 11:00" as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (zone, start, end, local day, expected UTC start, expected UTC end)
PLAIN_WINDOWS = [
    # Overnight in Tokyo (UTC+9, no DST): 20:00 JST = 11:00 UTC; 03:00 JST next day = 18:00 UTC.
    ("Asia/Tokyo", "20:00", "03:00", "2026-11-22", "2026-11-22 11:00", "2026-11-22 18:00"),
    ("Asia/Tokyo", "08:00", "22:00", "2026-01-01", "2025-12-31 23:00", "2026-01-01 13:00"),
    ("UTC", "22:00", "02:00", "2026-12-31", "2026-12-31 22:00", "2027-01-01 02:00"),
    ("Europe/Paris", "09:00", "22:00", "2026-07-01", "2026-07-01 07:00", "2026-07-01 20:00"),
    ("Europe/Paris", "09:00", "22:00", "2026-01-15", "2026-01-15 08:00", "2026-01-15 21:00"),
    ("America/New_York", "09:00", "22:00", "2026-07-01", "2026-07-01 13:00", "2026-07-02 02:00"),
]

DST_WINDOWS = [
    # Paris spring-forward, 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
    # A start inside the gap opens the window at the jump...
    ("Europe/Paris", "02:30", "10:00", "2026-03-29", "2026-03-29 01:00", "2026-03-29 08:00"),
    # ...and an end inside the gap closes it at the jump.
    ("Europe/Paris", "01:00", "02:30", "2026-03-29", "2026-03-29 00:00", "2026-03-29 01:00"),
    ("Europe/Paris", "22:00", "02:30", "2026-03-28", "2026-03-28 21:00", "2026-03-29 01:00"),
    # Both edges in the gap: an empty window, never a negative one.
    ("Europe/Paris", "02:10", "02:50", "2026-03-29", "2026-03-29 01:00", "2026-03-29 01:00"),
    ("Europe/Paris", "02:50", "03:10", "2026-03-29", "2026-03-29 01:00", "2026-03-29 01:10"),
    # Paris fall-back, 2026-10-25: 03:00 CEST goes back to 02:00 CET at 01:00 UTC; an
    # ambiguous edge takes its first occurrence (CEST).
    ("Europe/Paris", "02:30", "10:00", "2026-10-25", "2026-10-25 00:30", "2026-10-25 09:00"),
    ("Europe/Paris", "00:00", "02:30", "2026-10-25", "2026-10-24 22:00", "2026-10-25 00:30"),
    ("Europe/Paris", "22:00", "02:30", "2026-10-24", "2026-10-24 20:00", "2026-10-25 00:30"),
    # New York: 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00 UTC); 2026-11-01 repeats 01:xx.
    ("America/New_York", "02:30", "23:00", "2026-03-08", "2026-03-08 07:00", "2026-03-09 03:00"),
    ("America/New_York", "01:30", "20:00", "2026-11-01", "2026-11-01 05:30", "2026-11-02 01:00"),
]


@pytest.mark.parametrize(("zone", "start", "end", "day", "utc_start", "utc_end"), PLAIN_WINDOWS)
def test_window_edges_are_local_wall_times_in_utc(
    zone: str, start: str, end: str, day: str, utc_start: str, utc_end: str
) -> None:
    """The window opens and closes at local wall times; an end before the start is next day."""
    window = active_window(persona(zone, start, end), date.fromisoformat(day))
    assert window == (at(utc_start), at(utc_end))


@pytest.mark.parametrize(("zone", "start", "end", "day", "utc_start", "utc_end"), DST_WINDOWS)
def test_dst_gap_maps_to_the_jump_and_repeat_to_its_first_occurrence(
    zone: str, start: str, end: str, day: str, utc_start: str, utc_end: str
) -> None:
    """A nonexistent edge is the instant of the DST jump; an ambiguous one its first occurrence."""
    window = active_window(persona(zone, start, end), date.fromisoformat(day))
    assert window == (at(utc_start), at(utc_end))


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/Paris", date(2026, 3, 29)),
        ("Europe/Paris", date(2026, 10, 25)),
        ("America/New_York", date(2026, 3, 8)),
        ("America/New_York", date(2026, 11, 1)),
        ("Australia/Lord_Howe", date(2026, 4, 5)),  # a 30-minute DST shift
        ("America/Santiago", date(2026, 9, 6)),  # midnight itself is skipped
    ],
)
def test_wall_to_utc_is_the_first_instant_showing_that_time(zone: str, day: date) -> None:
    """For every minute of a DST day the mapping is monotonic and the first instant showing it."""
    tz = ZoneInfo(zone)
    previous = None
    for minute in range(24 * 60):
        wall = time(minute // 60, minute % 60)
        at = wall_to_utc(day, wall, tz)
        wanted = datetime.combine(day, wall)
        assert at.tzinfo is UTC
        assert at.astimezone(tz).replace(tzinfo=None) >= wanted
        assert (at - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) < wanted
        if previous is not None:
            assert at >= previous
        previous = at


@pytest.mark.parametrize(
    ("now", "active"),
    [
        (utc(2026, 11, 22, 10, 59), False),  # 19:59 JST
        (utc(2026, 11, 22, 11, 0), True),  # 20:00 JST
        (utc(2026, 11, 22, 15, 0), True),  # 00:00 JST, the window carries on past midnight
        (utc(2026, 11, 22, 17, 59), True),  # 02:59 JST
        (utc(2026, 11, 22, 18, 0), False),  # 03:00 JST, end is exclusive
        (utc(2026, 11, 22, 3, 0), False),  # 12:00 JST
        (datetime(2026, 11, 23, 1, 30, tzinfo=ZoneInfo("Asia/Tokyo")), True),  # any aware zone
    ],
)
def test_is_active_across_local_midnight(now: datetime, active: bool) -> None:
    """An overnight persona is active from its start until its end on the next local day."""
    assert is_active(persona("Asia/Tokyo", "20:00", "03:00"), now) is active


def test_naive_now_is_refused() -> None:
    """A naive datetime is a bug in the caller, reported as ValueError rather than guessed at."""
    with pytest.raises(ValueError, match="timezone-aware"):
        is_active(persona("UTC", "09:00", "22:00"), datetime(2026, 1, 1, 12))


@pytest.mark.parametrize(
    ("hours", "now", "expected"),
    [
        # 01:00 JST on the 23rd: still inside the window that opened on the 22nd.
        (("20:00", "03:00"), utc(2026, 11, 22, 16), (date(2026, 11, 22), date(2026, 11, 23))),
        # 12:00 JST: yesterday's window has closed.
        (("20:00", "03:00"), utc(2026, 11, 23, 3), (date(2026, 11, 23),)),
        (("09:00", "22:00"), utc(2026, 11, 22, 16), (date(2026, 11, 23),)),
    ],
)
def test_days_to_plan_includes_an_overnight_window_still_open(
    hours: tuple[str, str], now: datetime, expected: tuple[date, ...]
) -> None:
    """After local midnight, yesterday's overnight window is still planned until it closes."""
    assert days_to_plan(persona("Asia/Tokyo", *hours), now) == expected


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        ("Asia/Tokyo", utc(2026, 11, 22, 14, 59), utc(2026, 11, 22, 15)),
        ("Asia/Tokyo", utc(2026, 11, 22, 15), utc(2026, 11, 23, 15)),  # strictly after now
        ("Europe/Paris", utc(2026, 3, 28, 12), utc(2026, 3, 28, 23)),  # CET midnight
        ("Europe/Paris", utc(2026, 3, 29, 12), utc(2026, 3, 29, 22)),  # CEST midnight
        ("Europe/Paris", utc(2026, 10, 25, 12), utc(2026, 10, 25, 23)),  # back to CET
        ("America/New_York", utc(2026, 11, 1, 12), utc(2026, 11, 2, 5)),
        # Santiago skips midnight on 2026-09-06: the date changes at the jump (04:00 UTC).
        ("America/Santiago", utc(2026, 9, 5, 15), utc(2026, 9, 6, 4)),
        # Santiago repeats 23:00-24:00 on 2026-04-04: midnight comes once, after the repeat.
        ("America/Santiago", utc(2026, 4, 5, 3, 30), utc(2026, 4, 5, 4)),
    ],
)
def test_next_local_midnight(zone: str, now: datetime, expected: datetime) -> None:
    """Re-planning happens when the persona's local date next changes, DST included."""
    assert next_local_midnight(persona(zone, "09:00", "22:00"), now) == expected
