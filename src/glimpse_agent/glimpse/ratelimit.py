"""What Glimpse says about its limits on every response, as data the agent can act on.

Every response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset``, but not which bucket they describe: the bucket follows from the
endpoint (``bucket_for``). Pure functions; the caller passes ``now``. Reset instants are read
by ``glimpse_agent.http.retry_after``, as every service's are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

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
    except (KeyError, ValueError):
        return None
    reset = parse_instant(headers.get("x-ratelimit-reset"), now=now)
    if reset is None:
        return None
    return RateLimitInfo(limit=limit, remaining=max(0, remaining), reset=reset, bucket=bucket)
