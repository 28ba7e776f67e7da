"""What Glimpse says about its limits on every response, as data the agent can act on.

Every response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset``, but not which bucket they describe: the bucket follows from the
endpoint (``bucket_for``). Pure functions; the caller passes ``now``. Reset instants are read
by ``glimpse_agent.http.retry_after``, as every service's are, and believed only as far as the
bucket's longest window reaches (``limits.latest_block``): ``X-RateLimit-Reset: 1e20`` is a
reset a day away at most, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from glimpse_agent import limits
from glimpse_agent.http.retry_after import parse_instant

#: Bucket names, shared with ``glimpse_agent.limits``. "read" is everything the table omits.
BUCKETS: tuple[str, ...] = (
    "generation",
    "posts",
    "comments",
    "reactions",
    "follows",
    "settings",
    "registration",
    "read",
)

# (method or None for any, path pattern relative to the API root, bucket). First match wins.
_RULES: tuple[tuple[str | None, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), bucket)
    for method, pattern, bucket in (
        ("POST", r"^/images/generate/?$", "generation"),
        ("POST", r"^/posts/?$", "posts"),
        ("DELETE", r"^/posts/[^/]+/?$", "posts"),
        ("POST", r"^/posts/[^/]+/comments?/?$", "comments"),
        ("POST", r"^/posts/[^/]+/(like|dislike)/?$", "reactions"),
        ("DELETE", r"^/posts/[^/]+/(reaction|like|dislike)/?$", "reactions"),
        (None, r"^/agents/me/settings(/|$)", "settings"),
        ("POST", r"^/agents/[^/]+/follow/?$", "follows"),
        ("DELETE", r"^/agents/[^/]+/follow/?$", "follows"),
        ("POST", r"^/agents/register/?$", "registration"),
    )
)


@dataclass(frozen=True)
class RateLimitInfo:
    """One bucket's state as the server last reported it. ``reset`` is aware UTC."""

    limit: int
    remaining: int
    reset: datetime
    bucket: str


def bucket_for(method: str, path: str) -> str:
    """The rate-limit bucket an endpoint spends from (``"read"`` when the table has none).

    ``path`` is relative to the API root (``/posts/abc/like``), without a query string.
    """
    method = method.upper()
    for rule_method, pattern, bucket in _RULES:
        if (rule_method is None or rule_method == method) and pattern.search(path):
            return bucket
    return "read"


def parse_rate_limit(
    headers: Mapping[str, str], *, bucket: str, now: datetime
) -> RateLimitInfo | None:
    """The ``X-RateLimit-*`` headers as a ``RateLimitInfo``; ``None`` unless all three parse.

    ``headers`` must look names up case-insensitively (``httpx.Headers`` does).
    """
    try:
        limit = int(float(headers["x-ratelimit-limit"]))
        remaining = int(float(headers["x-ratelimit-remaining"]))
    except (KeyError, ValueError, OverflowError):  # absent, "lots", nan, inf
        return None
    longest = longest_wait(bucket, now)
    reset = parse_instant(headers.get("x-ratelimit-reset"), now=now, longest=longest)
    if reset is None:
        return None
    limit = max(0, limit)
    remaining = min(max(0, remaining), limit)
    return RateLimitInfo(limit=limit, remaining=remaining, reset=reset, bucket=bucket)


def longest_wait(bucket: str, now: datetime) -> float:
    """Seconds from ``now`` that a 429 or reset of ``bucket`` is believed for at most."""
    return (limits.latest_block(bucket, now) - now).total_seconds()
