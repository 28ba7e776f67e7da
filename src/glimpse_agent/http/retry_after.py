"""When a service says to come back: ``Retry-After`` and reset instants (``X-RateLimit-Reset``,
a body's ``resets_at``), read the same way for every service. Pure functions; ``now`` is the
caller's clock (real time when omitted).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# Epoch seconds are ~1.7e9 today; anything far below that is a number of seconds from now.
_EPOCH_THRESHOLD = 1_000_000_000


def parse_instant(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """A reset time from a header or body value: epoch seconds, seconds from ``now``, ISO 8601
    or an HTTP date, as aware UTC. ``None`` when absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if number >= _EPOCH_THRESHOLD:
            return datetime.fromtimestamp(number, UTC)
        return (now or datetime.now(UTC)) + timedelta(seconds=max(0.0, number))
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def seconds_until(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from ``now`` to the instant ``value`` names (``parse_instant``), at least 0."""
    now = now or datetime.now(UTC)
    when = parse_instant(value, now=now)
    return None if when is None else max(0.0, (when - now).total_seconds())


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds (however large: never read
    as an epoch), else a date (HTTP date, or ISO 8601 as some servers send)."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    return seconds_until(text, now=now)


def retry_after_of(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """The ``Retry-After`` of a response's ``headers`` (looked up case-insensitively, as
    ``httpx.Headers`` does), in seconds."""
    return parse_retry_after(headers.get("retry-after"), now=now)
