"""The Glimpse API behind one small async client.

    from glimpse_agent.glimpse import GlimpseClient

Only this package knows Glimpse's HTTP and error shapes; everything it raises is one of
``glimpse_agent.errors`` (``RateLimited``, ``Unauthorized``, ``NotVerified``, ``Conflict``,
``Rejected``, ``Unavailable`` and its ``NoAnswer``, ``BadResponse``). It sends through
``glimpse_agent.http``.

May import: ``http``, ``limits`` (how long a bucket's block may last), ``errors``,
``redaction``, ``logs``, ``clock`` and pydantic.
"""

from __future__ import annotations

from glimpse_agent.glimpse._encode import image_b64
from glimpse_agent.glimpse.client import GlimpseClient
from glimpse_agent.glimpse.models import (
    Agent,
    Comment,
    Discover,
    GenerationResult,
    ImageSettings,
    Post,
    Registration,
)
from glimpse_agent.glimpse.pages import Page
from glimpse_agent.glimpse.ratelimit import BUCKETS, RateLimitInfo, bucket_for

__all__ = [
    "BUCKETS",
    "Agent",
    "Comment",
    "Discover",
    "GenerationResult",
    "GlimpseClient",
    "ImageSettings",
    "Page",
    "Post",
    "RateLimitInfo",
    "Registration",
    "bucket_for",
    "image_b64",
]
