"""When a service says to come back: ``Retry-After`` and reset instants (``X-RateLimit-Reset``,
a body's ``resets_at``), read the same way for every service. Pure functions; ``now`` is the
caller's clock (real time when omitted).

A server's number is never trusted as is: none of these functions raises, whatever the value
(``inf``, ``nan``, ``1e308``, ``-5``, a date in the year 9999), and every wait is clamped to
``longest`` (a day unless the caller knows the window, see ``limits.latest_block``). A
``Retry-After: 315360000`` must not block a bucket for ten years, and a ``1e20`` must not be an
``OverflowError`` on every request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# Epoch seconds are ~1.7e9 today; anything far below that is a number of seconds from now.
_EPOCH_THRESHOLD = 1_000_000_000
#: The longest wait any service's number is believed for: every limit we know is per day at
#: most, so a longer one is a server's mistake (or a hostile answer), not a reason to stop.
MAX_WAIT_SECONDS = 86_400.0


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _clamp(seconds: float, longest: float) -> float | None:
    """``seconds`` within ``[0, longest]``; ``None`` for NaN (it says nothing)."""
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), longest)


def _date(text: str) -> datetime | None:
    """An ISO 8601 or HTTP date as aware UTC; ``None`` when unreadable or out of range."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    try:
        if when.tzinfo is None:
            return when.replace(tzinfo=UTC)
        return when.astimezone(UTC)
    except (ValueError, OverflowError):  # 0001-01-01T00:00+05:00 has no UTC instant
        return None


def parse_instant(
    value: str | None, *, now: datetime | None = None, longest: float = MAX_WAIT_SECONDS
) -> datetime | None:
    """A reset time from a header or body value: epoch seconds, seconds from ``now``, ISO 8601
    or an HTTP date, as aware UTC, at most ``longest`` seconds after ``now`` (an instant in the
    past is kept: the limit has reset). ``None`` when absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    now = now or datetime.now(UTC)
    number = _number(text)
    if number is not None:
        if number >= _EPOCH_THRESHOLD and math.isfinite(number):
            ahead = number - now.timestamp()
            if ahead <= 0:
                return datetime.fromtimestamp(number, UTC)
        else:
            ahead = number
        seconds = _clamp(ahead, longest)
        return None if seconds is None else now + timedelta(seconds=seconds)
    when = _date(text)
    if when is None:
        return None
    if (when - now).total_seconds() > longest:
        return now + timedelta(seconds=longest)
    return when


def seconds_until(
    value: str | None, *, now: datetime | None = None, longest: float = MAX_WAIT_SECONDS
) -> float | None:
    """Seconds from ``now`` to the instant ``value`` names (``parse_instant``), within
    ``[0, longest]``."""
    now = now or datetime.now(UTC)
    when = parse_instant(value, now=now, longest=longest)
    return None if when is None else min(max(0.0, (when - now).total_seconds()), longest)


def parse_retry_after(
    value: str | None, *, now: datetime | None = None, longest: float = MAX_WAIT_SECONDS
) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, within ``[0, longest]``: delta-seconds
    (however large: never read as an epoch), else a date (HTTP date, or ISO 8601 as some
    servers send)."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    number = _number(text)
    if number is not None:
        return _clamp(number, longest)
    return seconds_until(text, now=now, longest=longest)


def retry_after_of(
    headers: Mapping[str, str], *, now: datetime | None = None, longest: float = MAX_WAIT_SECONDS
) -> float | None:
    """The ``Retry-After`` of a response's ``headers`` (looked up case-insensitively, as
    ``httpx.Headers`` does), in seconds within ``[0, longest]``."""
    return parse_retry_after(headers.get("retry-after"), now=now, longest=longest)
