"""Every limit of Glimpse's table, hit over real HTTP: 429 with the three X-RateLimit headers
and Retry-After, the client's RateLimited(retry_after, bucket), sliding hour/minute windows and
daily windows that reset at midnight UTC. Time moves on the simulated clock only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from glimpse_agent.clock import utc
from glimpse_agent.errors import Conflict, RateLimited, Rejected
from glimpse_agent.glimpse import GlimpseClient, RateLimitInfo, bucket_for
from glimpse_agent.http.retry_after import parse_instant, parse_retry_after
from glimpse_agent.sandbox.glimpse.testing import GlimpseSandbox

IMG = "https://images.example/a.png"
PROVIDER = {"X-Image-Provider": "huggingface", "X-Image-Key": "hf_limits_test_key"}


@dataclass
class Target:
    """What the spending requests act on."""

    me_id: str
    key: str
    post_id: str
    other_id: str


@pytest.fixture
def target(glimpse: GlimpseSandbox) -> Target:
    me_id, key = glimpse.agent("spender")
    other_id, _ = glimpse.agent("bystander")
    return Target(me_id, key, glimpse.world.post_as(other_id, "a post to spend on"), other_id)


def spend_request(bucket: str, i: int, t: Target) -> tuple[str, str, Any, dict[str, str]]:
    """The i-th request that spends from ``bucket``: (method, path, json, headers)."""
    auth = {"Authorization": f"Bearer {t.key}"}
    if bucket == "generation":
        return "POST", "/images/generate", {"prompt": f"p{i}"}, {**auth, **PROVIDER}
    if bucket == "posts":
        return "POST", "/posts", {"caption": f"c{i}", "image_url": IMG}, auth
    if bucket == "comments":
        return "POST", f"/posts/{t.post_id}/comment", {"content": f"c{i}"}, auth
    if bucket == "reactions":  # like / un-like alternately: both spend
        if i % 2 == 0:
            return "POST", f"/posts/{t.post_id}/like", None, auth
        return "DELETE", f"/posts/{t.post_id}/reaction", None, auth
    if bucket == "follows":
        return ("POST" if i % 2 == 0 else "DELETE"), f"/agents/{t.other_id}/follow", None, auth
    if bucket == "settings":
        return "GET", "/agents/me/settings/image-generation", None, auth
    assert bucket == "registration"
    return "POST", "/agents/register", {"name": f"reg_{i}", "owner_email": f"o{i}@x.io"}, {}


async def client_spend(client: GlimpseClient, bucket: str, i: int, t: Target) -> None:
    """The same spending, through the client's own method."""
    if bucket == "generation":
        await client.generate_image(f"p{i}", provider="huggingface", provider_key="hf_k12345678")
    elif bucket == "posts":
        await client.create_post(caption=f"c{i}", image_url=IMG)
    elif bucket == "comments":
        await client.comment(t.post_id, f"c{i}")
    elif bucket == "reactions":
        await (client.like(t.post_id) if i % 2 == 0 else client.remove_reaction(t.post_id))
    elif bucket == "follows":
        await (client.follow(t.other_id) if i % 2 == 0 else client.unfollow(t.other_id))
    elif bucket == "settings":
        await client.get_image_settings()
    else:
        await client.register(f"reg_{i}", f"o{i}@x.io")


async def spend(
    raw: httpx.AsyncClient, base: str, bucket: str, t: Target, start: int, count: int
) -> httpx.Response:
    """``count`` requests that must all succeed; returns the last response."""
    response = None
    for i in range(start, start + count):
        method, path, body, headers = spend_request(bucket, i, t)
        response = await raw.request(method, base + path, json=body, headers=headers)
        assert response.is_success, (i, response.status_code, response.text)
    assert response is not None
    return response


async def request(
    raw: httpx.AsyncClient, base: str, bucket: str, t: Target, i: int
) -> httpx.Response:
    method, path, body, headers = spend_request(bucket, i, t)
    return await raw.request(method, base + path, json=body, headers=headers)


def epoch(when: datetime) -> str:
    return str(int(when.timestamp()))


MIDNIGHT = utc(2025, 3, 4)
TABLE = [
    # bucket, limit, seconds until a slot frees when hit at 09:00 UTC, daily
    ("generation", 6, (MIDNIGHT - utc(2025, 3, 3, 9)).total_seconds(), True),
    ("posts", 6, (MIDNIGHT - utc(2025, 3, 3, 9)).total_seconds(), True),
    ("comments", 30, 3600, False),
    ("reactions", 60, 3600, False),
    ("follows", 30, 3600, False),
    ("registration", 5, 3600, False),
    ("settings", 10, 60, False),
]


@pytest.mark.parametrize(("bucket", "limit", "wait", "daily"), TABLE)
async def test_each_limit_answers_429_with_headers(
    glimpse: GlimpseSandbox, target: Target, bucket: str, limit: int, wait: float, daily: bool
) -> None:
    """After ``limit`` calls the next is 429 with Limit/Remaining=0/Reset, Retry-After and the
    documented body; the client raises RateLimited(retry_after, bucket); once the wait is
    over the same call works again."""
    now = glimpse.clock.now()
    async with httpx.AsyncClient() as raw:
        last = await spend(raw, glimpse.base_url, bucket, target, 0, limit)
        assert last.headers["X-RateLimit-Remaining"] == "0"
        refused = await request(raw, glimpse.base_url, bucket, target, limit)
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == str(limit)
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Reset"] == epoch(now + timedelta(seconds=wait))
    assert refused.headers["Retry-After"] == str(int(wait))
    error = refused.json()["error"]
    assert error["status"] == 429 and error["bucket"] == bucket
    if daily:
        assert error["code"] == "daily_limit_exceeded"
        assert (error["limit"], error["used"]) == (limit, limit)
        assert error["resets_at"].startswith("2025-03-04T00:00:00")
    else:
        assert error["code"] == "rate_limit_exceeded"

    key = None if bucket == "registration" else target.key
    async with glimpse.client(key) as client:
        with pytest.raises(RateLimited) as info:
            await client_spend(client, bucket, limit, target)
        assert (info.value.bucket, info.value.retry_after) == (bucket, wait)
        assert client.rate_limits[bucket].remaining == 0
        glimpse.clock.advance(wait)
        await client_spend(client, bucket, limit, target)
    assert glimpse.world.stats.rate_limited_count(bucket=bucket) == 2


@pytest.mark.parametrize("bucket", ["generation", "posts"])
async def test_daily_limits_reset_at_midnight_utc(
    glimpse: GlimpseSandbox, target: Target, bucket: str
) -> None:
    """A daily limit still refuses one second before midnight UTC and is fresh at midnight."""
    async with httpx.AsyncClient() as raw:
        await spend(raw, glimpse.base_url, bucket, target, 0, 6)
        glimpse.clock.set(utc(2025, 3, 3, 23, 59, 59))
        assert (await request(raw, glimpse.base_url, bucket, target, 6)).status_code == 429
        glimpse.clock.set(MIDNIGHT)
        fresh = await request(raw, glimpse.base_url, bucket, target, 7)
    assert fresh.is_success
    assert fresh.headers["X-RateLimit-Limit"] == "6"
    assert fresh.headers["X-RateLimit-Remaining"] == "5"
    assert fresh.headers["X-RateLimit-Reset"] == epoch(utc(2025, 3, 5))


async def test_generation_minute_limit(glimpse: GlimpseSandbox, target: Target) -> None:
    """10 generations in a minute are the most, even when they straddle midnight and the
    daily count is fresh: the 11th is 429 until the minute has slid past the first."""
    async with httpx.AsyncClient() as raw:
        glimpse.clock.set(utc(2025, 3, 3, 23, 59, 30))
        await spend(raw, glimpse.base_url, "generation", target, 0, 6)
        glimpse.clock.set(utc(2025, 3, 4, 0, 0, 10))
        await spend(raw, glimpse.base_url, "generation", target, 6, 4)
        refused = await request(raw, glimpse.base_url, "generation", target, 10)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert refused.headers["X-RateLimit-Limit"] == "10"
        assert refused.headers["Retry-After"] == "20"  # 23:59:30 + 60 s - 00:00:10
        glimpse.clock.advance(20)
        assert (await request(raw, glimpse.base_url, "generation", target, 11)).is_success


async def test_posts_hour_limit(glimpse: GlimpseSandbox, target: Target) -> None:
    """10 posts within an hour are the most, even across midnight (daily count fresh)."""
    async with httpx.AsyncClient() as raw:
        glimpse.clock.set(utc(2025, 3, 3, 23, 30))
        await spend(raw, glimpse.base_url, "posts", target, 0, 6)
        glimpse.clock.set(utc(2025, 3, 4, 0, 10))
        await spend(raw, glimpse.base_url, "posts", target, 6, 4)
        refused = await request(raw, glimpse.base_url, "posts", target, 10)
        assert refused.status_code == 429
        assert refused.headers["X-RateLimit-Limit"] == "10"
        assert refused.headers["Retry-After"] == "1200"
        glimpse.clock.set(utc(2025, 3, 4, 0, 30))
        assert (await request(raw, glimpse.base_url, "posts", target, 11)).is_success


async def test_hourly_windows_slide(glimpse: GlimpseSandbox, target: Target) -> None:
    """An hour window frees exactly the calls made more than an hour ago, not all at once."""
    async with httpx.AsyncClient() as raw:
        await spend(raw, glimpse.base_url, "comments", target, 0, 10)
        glimpse.clock.advance(timedelta(minutes=30))
        await spend(raw, glimpse.base_url, "comments", target, 10, 20)
        assert (await request(raw, glimpse.base_url, "comments", target, 30)).status_code == 429
        glimpse.clock.advance(timedelta(minutes=30))  # the first 10 have slid out
        await spend(raw, glimpse.base_url, "comments", target, 31, 10)
        refused = await request(raw, glimpse.base_url, "comments", target, 41)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1800"


async def test_limits_are_per_agent(glimpse: GlimpseSandbox, target: Target) -> None:
    """One agent spending its posts does not touch another agent's allowance."""
    _, other_key = glimpse.agent("second_spender")
    async with httpx.AsyncClient() as raw:
        await spend(raw, glimpse.base_url, "posts", target, 0, 6)
    async with glimpse.client(other_key) as client:
        await client.create_post(caption="mine", image_url=IMG)
        assert client.rate_limits["posts"].remaining == 5
    stats = glimpse.world.stats
    assert stats.requests_by_agent[target.me_id] == 6


async def test_refused_actions_spend_nothing(glimpse: GlimpseSandbox, target: Target) -> None:
    """A 409 (liked twice) or a 400 (bad post) does not use up the bucket."""
    async with glimpse.client(target.key) as client:
        await client.like(target.post_id)
        with pytest.raises(Conflict):
            await client.like(target.post_id)
        assert client.rate_limits["reactions"].remaining == 59
        with pytest.raises(Rejected):
            await client.create_post(caption="x", image_url="ftp://nope")
        assert client.rate_limits["posts"].remaining == 6


@pytest.mark.parametrize(
    ("method", "path", "auth", "status"),
    [
        ("GET", "/timeline/public", False, 200),
        ("GET", "/feed", False, 401),
        ("GET", "/agents/me", True, 200),
        ("GET", "/posts/missing", False, 404),
        ("POST", "/posts", True, 400),
        ("GET", "/explore?limit=99", False, 400),
    ],
)
async def test_every_response_carries_rate_limit_headers(
    glimpse: GlimpseSandbox, target: Target, method: str, path: str, auth: bool, status: int
) -> None:
    """Successes and errors alike carry X-RateLimit-Limit/Remaining/Reset."""
    headers = {"Authorization": f"Bearer {target.key}"} if auth else {}
    async with httpx.AsyncClient() as raw:
        response = await raw.request(
            method, glimpse.base_url + path, headers=headers, json={} if method == "POST" else None
        )
    assert response.status_code == status
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert response.headers[name].isdigit()
    if status >= 400:
        assert set(response.json()["error"]) >= {"code", "message", "status"}


async def test_client_tracks_limits_per_bucket(glimpse: GlimpseSandbox, target: Target) -> None:
    """The client records each response's headers under the endpoint's bucket and reports
    them to on_rate_limit."""
    seen: list[RateLimitInfo] = []
    async with GlimpseClient(
        glimpse.base_url, target.key, clock=glimpse.clock, on_rate_limit=seen.append
    ) as client:
        await client.create_post(caption="x", image_url=IMG)
        await client.public_timeline()
        posts = client.rate_limits["posts"]
        assert (posts.limit, posts.remaining, posts.reset) == (6, 5, MIDNIGHT)
        assert client.rate_limits["read"].limit == 600
        assert client.last_rate_limit is not None and client.last_rate_limit.bucket == "read"
    assert [i.bucket for i in seen] == ["posts", "read"]


@pytest.mark.parametrize(
    ("method", "path", "bucket"),
    [
        ("POST", "/images/generate", "generation"),
        ("POST", "/posts", "posts"),
        ("DELETE", "/posts/abc", "posts"),
        ("GET", "/posts/abc", "read"),
        ("POST", "/posts/abc/comment", "comments"),
        ("POST", "/posts/abc/like", "reactions"),
        ("POST", "/posts/abc/dislike", "reactions"),
        ("DELETE", "/posts/abc/reaction", "reactions"),
        ("POST", "/agents/abc/follow", "follows"),
        ("DELETE", "/agents/abc/follow", "follows"),
        ("GET", "/agents/me/settings/image-generation", "settings"),
        ("PUT", "/agents/me/settings/image-generation", "settings"),
        ("POST", "/agents/register", "registration"),
        ("POST", "/agents/verify", "read"),
        ("GET", "/timeline/public", "read"),
    ],
)
def test_bucket_for_endpoint(method: str, path: str, bucket: str) -> None:
    """Each endpoint maps to the bucket of the published table it spends from."""
    assert bucket_for(method, path) == bucket


NOW = datetime(2025, 3, 3, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1741000000", datetime.fromtimestamp(1741000000, UTC)),
        ("90", NOW + timedelta(seconds=90)),
        ("2025-03-04T00:00:00Z", MIDNIGHT),
        ("Tue, 04 Mar 2025 00:00:00 GMT", MIDNIGHT),
        ("soon", None),
        (None, None),
    ],
)
def test_reset_header_formats(value: str | None, expected: datetime | None) -> None:
    """X-RateLimit-Reset may be epoch seconds, seconds from now, ISO 8601 or an HTTP date."""
    assert parse_instant(value, now=NOW) == expected


def test_retry_after_formats() -> None:
    """Retry-After may be seconds or an HTTP date; garbage is None."""
    assert parse_retry_after("120", now=NOW) == 120
    assert parse_retry_after("Mon, 03 Mar 2025 09:01:00 GMT", now=NOW) == 60
    assert parse_retry_after("later", now=NOW) is None


async def test_deleting_a_post_needs_no_posts_allowance(
    glimpse: GlimpseSandbox, target: Target
) -> None:
    """With the daily posts spent, an agent can still delete a post, and that frees nothing."""
    async with glimpse.client(target.key) as client:
        posts = [await client.create_post(caption=f"c{i}", image_url=IMG) for i in range(6)]
        await client.delete_post(posts[0].id)
        assert client.rate_limits["posts"].remaining == 0
        with pytest.raises(RateLimited):
            await client.create_post(caption="seventh", image_url=IMG)
