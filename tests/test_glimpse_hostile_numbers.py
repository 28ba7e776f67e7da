"""Odd numbers and bodies from the server, met at the boundary (issue 11, #5): absurd
``Retry-After`` and reset values are clamped per bucket and never raise, a 429 naming a bucket
we do not know counts against the endpoint's own, JSON is parsed with depth and size limits, a
bad item costs only itself, and a 2xx that says "not done" is not success. The ledger clamps
what it is given and what an older version stored.

The hostile answers come from a scripted server on loopback (real HTTP): the Glimpse emulator
here cannot be told to send them. The pure parts are tested as functions."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.conftest import Serve

from glimpse_agent import limits
from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.errors import BadResponse, Conflict, RateLimited, Rejected
from glimpse_agent.glimpse import GlimpseClient, Post
from glimpse_agent.glimpse.pages import MAX_PAGE_ITEMS
from glimpse_agent.glimpse.ratelimit import parse_rate_limit
from glimpse_agent.http.bodies import MAX_JSON_DEPTH, JsonTooDeep, parse_json, too_deep
from glimpse_agent.http.retry_after import (
    MAX_WAIT_SECONDS,
    parse_instant,
    parse_retry_after,
    seconds_until,
)
from glimpse_agent.ledger import Ledger
from glimpse_agent.ledger.records import iso
from glimpse_agent.persona import Persona

NOW = datetime(2025, 3, 3, 23, 0, tzinfo=UTC)  # an hour before midnight UTC
KEY = "glm_hostile_key_123456"
HOSTILE = ["inf", "Infinity", "1e308", "315360000", "Wed, 21 Oct 2999 07:28:00 GMT"]
ABSURD = [
    *HOSTILE,
    "nan",
    "-5",
    "-inf",
    "1e20",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00+05:00",
]


# --------------------------------------------------------------------- pure: waits and instants


@pytest.mark.parametrize("value", ABSURD)
def test_no_server_number_raises_or_waits_past_a_day(value: str) -> None:
    wait = parse_retry_after(value, now=NOW)
    assert wait is None or 0.0 <= wait <= MAX_WAIT_SECONDS
    until = seconds_until(value, now=NOW)
    assert until is None or 0.0 <= until <= MAX_WAIT_SECONDS
    instant = parse_instant(value, now=NOW)
    assert instant is None or instant <= NOW + timedelta(seconds=MAX_WAIT_SECONDS)


@pytest.mark.parametrize("value", HOSTILE)
def test_huge_waits_are_clamped_to_the_longest_given(value: str) -> None:
    assert parse_retry_after(value, now=NOW) == MAX_WAIT_SECONDS
    assert parse_retry_after(value, now=NOW, longest=3600) == 3600


def test_negative_and_nan_waits() -> None:
    assert parse_retry_after("-5", now=NOW) == 0.0
    assert parse_retry_after("-inf", now=NOW) == 0.0
    assert parse_retry_after("nan", now=NOW) is None
    assert parse_instant("1e20", now=NOW) == NOW + timedelta(days=1)
    assert parse_instant("-1e20", now=NOW) == NOW
    assert parse_instant("nan", now=NOW) is None


def test_each_bucket_is_blocked_at_most_as_long_as_its_longest_window() -> None:
    margin = limits.BLOCK_MARGIN
    midnight = datetime(2025, 3, 4, tzinfo=UTC)
    assert limits.latest_block("posts", NOW) == midnight + margin  # daily
    assert limits.latest_block("generation", NOW) == midnight + margin  # minute and daily
    assert limits.latest_block("reactions", NOW) == NOW + timedelta(hours=1) + margin
    assert limits.latest_block("settings", NOW) == NOW + timedelta(hours=1)  # minute only
    assert limits.latest_block("read", NOW) == NOW + timedelta(days=1)  # not in the table
    far = NOW + timedelta(days=3650)
    assert limits.clamp_block("comments", far, NOW) == NOW + timedelta(hours=1) + margin
    soon = NOW + timedelta(minutes=5)
    assert limits.clamp_block("comments", soon, NOW) == soon


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-ratelimit-limit": "inf", "x-ratelimit-remaining": "1"}, None),
        ({"x-ratelimit-limit": "nan", "x-ratelimit-remaining": "1"}, None),
        ({"x-ratelimit-limit": "6", "x-ratelimit-remaining": "-1"}, (6, 0)),
        ({"x-ratelimit-limit": "6", "x-ratelimit-remaining": "1e30"}, (6, 6)),
    ],
)
def test_rate_limit_headers_that_make_no_sense(
    headers: dict[str, str], expected: tuple[int, int] | None
) -> None:
    info = parse_rate_limit({**headers, "x-ratelimit-reset": "60"}, bucket="posts", now=NOW)
    assert (None if info is None else (info.limit, info.remaining)) == expected


@pytest.mark.parametrize("reset", ["1e20", "inf", "315360000", "Wed, 21 Oct 2999 07:28:00 GMT"])
def test_a_reset_is_never_later_than_the_buckets_longest_window(reset: str) -> None:
    headers = {"x-ratelimit-limit": "6", "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    info = parse_rate_limit(headers, bucket="posts", now=NOW)
    assert info is not None and info.reset == limits.latest_block("posts", NOW)
    info = parse_rate_limit(headers, bucket="settings", now=NOW)
    assert info is not None and info.reset == NOW + timedelta(hours=1)


# --------------------------------------------------------------------- pure: JSON and items


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_json_deeper_than_the_limit_is_refused_before_it_is_parsed() -> None:
    assert parse_json(nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(JsonTooDeep):
        parse_json(nested(MAX_JSON_DEPTH + 1))
    with pytest.raises(ValueError):  # a JsonTooDeep is a ValueError, as any unreadable JSON
        parse_json(nested(200_000))
    with pytest.raises(JsonTooDeep):
        parse_json(b'{"a": ' * 100 + b"1" + b"}" * 100)


def test_brackets_inside_strings_are_text() -> None:
    body = json.dumps({"caption": "[" * 500 + '"\\' + "{" * 500, "n": [[1]]}).encode()
    assert not too_deep(body)
    assert parse_json(body)["n"] == [[1]]
    assert not too_deep(b"[[[}")  # unbalanced: json.loads says so, not the depth check
    with pytest.raises(ValueError):
        parse_json(b"[[[}")


@pytest.mark.parametrize("value", [1e20, -1e20, math.inf, "9999-99-99", True, 1e300])
def test_an_unreadable_timestamp_is_none_not_an_error(value: Any) -> None:
    post = Post.model_validate({"id": "p1", "created_at": value})
    assert post.created_at is None


def test_millisecond_timestamps_are_read() -> None:
    post = Post.model_validate({"id": "p1", "created_at": 1_741_000_000_000})
    assert post.created_at == datetime.fromtimestamp(1_741_000_000, UTC)


# --------------------------------------------------------------------- a scripted server

_SCRIPT: dict[str, tuple[int, bytes, dict[str, str]]] = {}
_SEEN: list[tuple[str, str]] = []


async def _scripted(request: Request) -> Response:
    _SEEN.append((request.method, request.url.path))
    status, body, headers = _SCRIPT.get(request.url.path, (404, b'{"error": "nothing"}', {}))
    headers = {"content-type": "application/json", **headers}
    return Response(body, status, headers=headers)


async def _evil(request: Request) -> Response:
    _SEEN.append(("EVIL " + request.method, request.headers.get("authorization", "")))
    return Response(b'{"id": "stolen"}', 200, media_type="application/json")


@pytest.fixture(scope="module")
def servers(serve_module: Serve) -> tuple[str, str]:
    routes = [Route("/{path:path}", _scripted, methods=["GET", "POST", "DELETE"])]
    evil = [Route("/{path:path}", _evil, methods=["GET", "POST"])]
    return serve_module(Starlette(routes=routes)), serve_module(Starlette(routes=evil))


@pytest.fixture
def odd(servers: tuple[str, str]) -> Iterator[str]:
    _SCRIPT.clear()
    _SEEN.clear()
    yield servers[0]


def script(path: str, status: int, body: Any, **headers: str) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    _SCRIPT[path] = (status, raw, headers)


def client(url: str, clock: SimulatedClock | None = None) -> GlimpseClient:
    return GlimpseClient(url, KEY, timeout=5.0, clock=clock or SimulatedClock(NOW))


RATE = {"error": {"code": "rate_limit_exceeded", "message": "slow down", "status": 429}}


@pytest.mark.parametrize("value", ABSURD)
async def test_any_retry_after_on_a_post_429_is_a_sane_wait(odd: str, value: str) -> None:
    script("/posts", 429, RATE, **{"Retry-After": value})
    async with client(odd) as glimpse:
        with pytest.raises(RateLimited) as info:
            await glimpse.create_post(caption="c", image_url="http://img.test/a.png")
    wait = info.value.retry_after
    longest = (limits.latest_block("posts", NOW) - NOW).total_seconds()
    assert info.value.bucket == "posts"
    assert wait is None or 0 <= wait <= longest


async def test_a_minute_buckets_429_blocks_an_hour_at_most(odd: str) -> None:
    script("/agents/me/settings/image-generation", 429, RATE, **{"Retry-After": "1e308"})
    async with client(odd) as glimpse:
        with pytest.raises(RateLimited) as info:
            await glimpse.get_image_settings()
    assert (info.value.bucket, info.value.retry_after) == ("settings", 3600)


async def test_a_429_body_reset_ten_years_away_waits_until_midnight(odd: str) -> None:
    body = {"error": {**RATE["error"], "resets_at": "2035-03-03T23:00:00Z"}}
    script("/posts", 429, body)
    async with client(odd) as glimpse:
        with pytest.raises(RateLimited) as info:
            await glimpse.create_post(caption="c", image_url="http://img.test/a.png")
    assert info.value.retry_after == (limits.latest_block("posts", NOW) - NOW).total_seconds()


@pytest.mark.parametrize("reset", ["1e20", "inf", "nan", "-1e20", "315360000"])
async def test_absurd_rate_limit_headers_on_a_good_answer(odd: str, reset: str) -> None:
    headers = {"X-RateLimit-Limit": "6", "X-RateLimit-Remaining": "5", "X-RateLimit-Reset": reset}
    script("/agents/me", 200, {"id": "a1", "name": "mira"}, **headers)
    async with client(odd) as glimpse:
        me = await glimpse.me()
        seen = glimpse.rate_limits.get("read")
    assert me.id == "a1"
    assert seen is None or seen.reset <= limits.latest_block("read", NOW)


async def test_a_429_naming_an_unknown_bucket_counts_against_the_endpoints(odd: str) -> None:
    body = {"error": {**RATE["error"], "bucket": "mystery"}}
    script("/posts/p1/like", 429, body, **{"Retry-After": "60"})
    async with client(odd) as glimpse:
        with structlog.testing.capture_logs() as logs, pytest.raises(RateLimited) as info:
            await glimpse.like("p1")
    assert (info.value.bucket, info.value.retry_after) == ("reactions", 60)
    (logged,) = [e for e in logs if e["event"] == "glimpse.unknown_bucket"]
    assert (logged["named"], logged["counted_as"]) == ("mystery", "reactions")


async def test_a_429_naming_a_known_bucket_is_believed(odd: str) -> None:
    script("/posts/p1/comment", 429, {"error": {**RATE["error"], "bucket": "comments"}})
    async with client(odd) as glimpse:
        with pytest.raises(RateLimited) as info:
            await glimpse.comment("p1", "nice")
    assert info.value.bucket == "comments"


async def test_json_nested_200000_deep_is_bad_response(odd: str) -> None:
    script("/agents/me", 200, nested(200_000))
    script("/explore", 200, b'{"posts": ' + nested(200_000) + b"}")
    script("/posts/p1/like", 400, nested(200_000))
    async with client(odd) as glimpse:
        with pytest.raises(BadResponse, match="deeper than"):
            await glimpse.me()
        with pytest.raises(BadResponse):
            await glimpse.explore()
        with pytest.raises(Rejected):  # an error body too deep to read is still a 400
            await glimpse.like("p1")


async def test_a_list_body_over_the_cap_is_refused_unread(odd: str) -> None:
    items = [{"id": f"p{i}", "caption": "x" * 40} for i in range(100_000)]  # ~5.6 MB
    script("/explore", 200, {"data": items})
    async with client(odd) as glimpse:
        with pytest.raises(BadResponse, match="too large"):
            await glimpse.explore()


async def test_a_page_reads_at_most_max_page_items(odd: str) -> None:
    items = [{"id": f"p{i}", "seq": i + 1} for i in range(MAX_PAGE_ITEMS + 50)]
    script("/explore", 200, {"data": items})
    async with client(odd) as glimpse:
        page = await glimpse.explore()
    assert len(page) == MAX_PAGE_ITEMS and page.skipped == 50


async def test_a_bad_item_is_skipped_and_logged_once_per_page(odd: str) -> None:
    items = [
        {"id": "p1", "seq": 3, "created_at": 1e20},  # kept: its date is unreadable
        {"id": "p2", "seq": "one"},  # skipped
        {"id": "p3", "seq": 2, "like_count": "many"},  # skipped
        {"id": "p4", "seq": 1, "caption": "x" * 1_000_000},  # kept: long, but a post
    ]
    script("/feed", 200, {"posts": items})
    async with client(odd) as glimpse:
        with structlog.testing.capture_logs() as logs:
            page = await glimpse.feed()
    assert [p.id for p in page] == ["p1", "p4"] and page.items[0].created_at is None
    (logged,) = [e for e in logs if e["event"] == "glimpse.items_skipped"]
    assert (logged["skipped"], logged["kept"]) == (2, 2)
    assert logged["first_problem"].startswith("seq")


@pytest.mark.parametrize(
    ("path", "body", "call", "expected"),
    [
        ("/posts/p1/like", {"success": False}, lambda g: g.like("p1"), Rejected),
        ("/posts/p1/like", {"ok": False}, lambda g: g.like("p1"), Rejected),
        ("/posts/p1/like", {"status": "error"}, lambda g: g.like("p1"), Rejected),
        (
            "/posts/p1/like",
            {"success": False, "error": {"code": "already_liked", "message": "x"}},
            lambda g: g.like("p1"),
            Conflict,
        ),
        ("/agents/a2/follow", {"success": False}, lambda g: g.follow("a2"), Rejected),
        (
            "/posts/p1/comment",
            {"success": False, "comment": {"id": "c1"}},
            lambda g: g.comment("p1", "hi"),
            Rejected,
        ),
        # A new post the server says it did not make: uncertain, so the agent looks first.
        (
            "/posts",
            {"success": False, "post": {"id": "p9"}},
            lambda g: g.create_post(caption="c", image_url="http://img.test/a.png"),
            BadResponse,
        ),
    ],
)
async def test_a_2xx_that_says_not_done_is_not_success(
    odd: str,
    path: str,
    body: Any,
    call: Callable[[GlimpseClient], Any],
    expected: type[Exception],
) -> None:
    script(path, 200, body)
    async with client(odd) as glimpse:
        with pytest.raises(expected) as info:
            await call(glimpse)
    assert type(info.value) is expected and "not done" in str(info.value)


async def test_success_true_is_still_done(odd: str) -> None:
    script("/posts/p1/like", 200, {"success": True, "error": None})
    async with client(odd) as glimpse:
        await glimpse.like("p1")


async def test_an_html_page_is_bad_response_naming_its_type(odd: str) -> None:
    html = b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"
    _SCRIPT["/agents/me"] = (200, html, {"content-type": "text/html"})
    async with client(odd) as glimpse:
        with pytest.raises(BadResponse, match=r"not JSON \(text/html\)"):
            await glimpse.me()


async def test_a_redirect_to_another_host_carries_no_key_there(
    odd: str, servers: tuple[str, str]
) -> None:
    script("/agents/me", 302, b"", Location=servers[1] + "/agents/me")
    async with client(odd) as glimpse:  # its own client: redirects are not followed at all
        with pytest.raises(Rejected, match="HTTP 302"):
            await glimpse.me()
    async with httpx.AsyncClient(follow_redirects=True) as http:  # a shared one that does
        glimpse = GlimpseClient(odd, KEY, http=http, clock=SimulatedClock(NOW))
        with pytest.raises(Rejected, match="another host"):
            await glimpse.me()
    assert _SEEN == [("GET", "/agents/me"), ("GET", "/agents/me")]


async def test_a_link_to_another_host_gives_a_cursor_and_is_never_followed(
    odd: str, servers: tuple[str, str]
) -> None:
    link = f'<{servers[1]}/explore?max_id=1>; rel="next"'
    script("/explore", 200, {"posts": [{"id": "p2", "seq": 2}]}, Link=link)
    async with client(odd) as glimpse:
        page = await glimpse.explore()
        assert page.next_max_id == 1
        await glimpse.explore(max_id=page.next_max_id)
    assert _SEEN == [("GET", "/explore"), ("GET", "/explore")]


@pytest.mark.parametrize(
    "link", ["<http://[::1>; rel=next", "<<<>>>;;;", '<http://x/?max_id=1e999>; rel="next"']
)
async def test_an_unreadable_link_costs_only_the_cursor(odd: str, link: str) -> None:
    script("/explore", 200, {"posts": [{"id": "p2", "seq": 2}]}, Link=link)
    async with client(odd) as glimpse:
        page = await glimpse.explore()
    assert [p.id for p in page] == ["p2"] and page.next_max_id is None


# --------------------------------------------------------------------- the ledger

LEDGER_NOW = utc(2026, 5, 1, 9)
PERSONA = Persona(name="ada", topics=["harbours"], posts_per_day=3)


def test_the_ledger_clamps_a_block_on_the_way_in(tmp_path: Path) -> None:
    clock = SimulatedClock(LEDGER_NOW)
    with Ledger.open(tmp_path / "state", clock=clock) as ledger:
        ledger.note_rate_limited("posts", LEDGER_NOW + timedelta(days=3650))
        ledger.note_rate_limited("settings", LEDGER_NOW + timedelta(days=3650))
        ledger.note_server_limit("comments", 30, 0, LEDGER_NOW + timedelta(days=3650), LEDGER_NOW)
        midnight = utc(2026, 5, 2)
        assert ledger.usage("posts").blocked_until == midnight + limits.BLOCK_MARGIN
        assert ledger.usage("settings").blocked_until == LEDGER_NOW + timedelta(hours=1)
        view = ledger.usage("comments").server
        assert view is not None
        assert view.reset == LEDGER_NOW + timedelta(hours=1) + limits.BLOCK_MARGIN
        tomorrow = midnight + timedelta(hours=1)
        assert ledger.remaining("posts", tomorrow, PERSONA) == PERSONA.posts_per_day


def test_a_block_an_older_version_stored_for_years_runs_out(tmp_path: Path) -> None:
    """A ledger written before the clamp holds a 429 block until 2036: it blocks no longer than
    the bucket's longest window, and once pruned, it runs out at a fixed instant."""
    state = tmp_path / "state"
    clock = SimulatedClock(LEDGER_NOW)
    with Ledger.open(state, clock=clock) as ledger:
        ledger.note_rate_limited("posts", LEDGER_NOW + timedelta(minutes=5))
    path = state / "ledger.json"
    doc = json.loads(path.read_text())
    (bucket,) = doc["buckets"].values()
    bucket["blocked_until"] = "2036-05-01T09:00:00.000000Z"
    path.write_text(json.dumps(doc))
    with Ledger.open(state, clock=clock) as ledger:
        latest = limits.latest_block("posts", LEDGER_NOW)
        assert ledger.usage("posts").blocked_until == latest
        assert ledger.remaining("posts", LEDGER_NOW, PERSONA) == 0
        ledger.prune(LEDGER_NOW)
        (bucket,) = json.loads(path.read_text())["buckets"].values()
        assert bucket["blocked_until"] == iso(latest)  # a fixed instant now, no longer sliding
        later = clock.advance(timedelta(days=1))
        assert ledger.usage("posts").blocked_until == latest
        assert ledger.remaining("posts", later, PERSONA) == PERSONA.posts_per_day
