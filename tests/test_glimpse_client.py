"""The Glimpse client against the emulator over real HTTP: every method, every error class,
and the odd-but-valid response shapes a real server may send."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glimpse_agent.errors import (
    BadResponse,
    Conflict,
    NoAnswer,
    NotVerified,
    RateLimited,
    Rejected,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.glimpse import GlimpseClient, Page, Post
from glimpse_agent.sandbox.glimpse.testing import GlimpseSandbox
from glimpse_agent.sandbox.images.pictures import png_for

IMG = "https://images.example/a.png"


@pytest.fixture
def me(glimpse: GlimpseSandbox) -> tuple[str, str]:
    return glimpse.agent("me_agent")


@pytest.fixture
def other(glimpse: GlimpseSandbox) -> tuple[str, str]:
    return glimpse.agent("other_agent")


# ---------------------------------------------------------------------- onboarding, profile


async def test_register_returns_key_and_client_uses_it(glimpse: GlimpseSandbox) -> None:
    """register() returns a glm_ key and agent id, and the keyless client adopts the key."""
    async with glimpse.client() as client:
        reg = await client.register("newbie", "owner@example.com")
        assert reg.api_key.startswith("glm_") and reg.agent_id
        assert client.has_key
        assert (await client.me()).id == reg.agent_id


async def test_unverified_key_cannot_post_until_verified(glimpse: GlimpseSandbox) -> None:
    """An unverified key gets NotVerified on writes; verify(code from the mailbox) unlocks them."""
    async with glimpse.client() as client:
        await client.register("newbie", "owner@example.com")
        with pytest.raises(NotVerified):
            await client.create_post(caption="too early", image_url=IMG)
        await client.verify(glimpse.world.outbox["owner@example.com"])
        post = await client.create_post(caption="now", image_url=IMG)
        assert post.caption == "now"


async def test_resend_verification_replaces_the_code(glimpse: GlimpseSandbox) -> None:
    """resend_verification() mails a new code; the old one stops working."""
    async with glimpse.client() as client:
        await client.register("newbie", "owner@example.com")
        old = glimpse.world.outbox["owner@example.com"]
        await client.resend_verification()
        new = glimpse.world.outbox["owner@example.com"]
        assert new != old  # codes come from a seeded RNG: this holds for every run
        with pytest.raises(Rejected):
            await client.verify(old)
        await client.verify(new)
        assert (await client.me()).is_verified


async def test_verify_with_a_wrong_code_is_rejected(glimpse: GlimpseSandbox) -> None:
    """A wrong code is a plain Rejected (not a key problem, not retryable)."""
    async with glimpse.client() as client:
        await client.register("newbie", "owner@example.com")
        code = glimpse.world.outbox["owner@example.com"]
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        with pytest.raises(Rejected) as info:
            await client.verify(wrong)
        assert type(info.value) is Rejected


async def test_me_and_update_me(glimpse: GlimpseSandbox, me: tuple[str, str]) -> None:
    """me() is the key's profile; update_me() changes bio and display name."""
    async with glimpse.client(me[1]) as client:
        assert (await client.me()).id == me[0]
        updated = await client.update_me(bio="I paint fog.", display_name="Fog Painter")
        assert (updated.bio, updated.display_name) == ("I paint fog.", "Fog Painter")


async def test_agent_profile_posts_and_follow_lists(
    glimpse: GlimpseSandbox, me: tuple[str, str], other: tuple[str, str]
) -> None:
    """agent(), agent_posts(), followers() and following() read another agent's public data."""
    glimpse.world.post_as(other[0], "first #fog")
    glimpse.world.post_as(other[0], "second")
    glimpse.world.follow_as(other[0], me[0])
    async with glimpse.client() as anonymous, glimpse.client(me[1]) as client:
        profile = await anonymous.agent(other[0])
        assert profile.name == "other_agent" and profile.following_count == 1
        posts = await anonymous.agent_posts(other[0])
        assert [p.caption for p in posts] == ["second", "first #fog"]
        await client.follow(other[0])
        assert [a.id for a in await anonymous.followers(other[0])] == [me[0]]
        assert [a.id for a in await anonymous.following(other[0])] == [me[0]]


# ---------------------------------------------------------------------- images and posts


async def test_image_settings_roundtrip(glimpse: GlimpseSandbox, me: tuple[str, str]) -> None:
    """put/get/delete_image_settings store a provider key; reads show only a masked hint."""
    key = "hf_0123456789abcdefXYZ1"
    async with glimpse.client(me[1]) as client:
        assert not (await client.get_image_settings()).configured
        stored = await client.put_image_settings("huggingface", key)
        assert stored.provider == "huggingface" and stored.configured
        read = await client.get_image_settings()
        assert read.key_hint and key not in read.model_dump_json()
        await client.delete_image_settings()
        assert not (await client.get_image_settings()).configured


async def test_generate_image_with_per_request_key(
    glimpse: GlimpseSandbox, me: tuple[str, str]
) -> None:
    """generate_image(provider=, provider_key=) sends the X-Image-* headers and returns a
    fetchable PNG with every documented field."""
    async with glimpse.client(me[1]) as client:
        result = await client.generate_image(
            "a fox in fog", style="watercolor", provider="openai", provider_key="sk-test123456"
        )
    assert result.generation_model == "dall-e-3"
    assert result.generation_id and result.blurhash and result.thumbnail_url
    assert result.full_image_url and result.width == result.height == 512
    assert isinstance(result.daily_usage, dict) and result.daily_usage["used"] == 1
    async with httpx.AsyncClient() as raw:
        png = (await raw.get(result.image_url)).content
    assert Image.open(io.BytesIO(png)).size == (512, 512)


async def test_generate_image_with_stored_key(glimpse: GlimpseSandbox, me: tuple[str, str]) -> None:
    """With a stored key, generate_image(prompt) needs no headers."""
    async with glimpse.client(me[1]) as client:
        await client.put_image_settings("huggingface", "hf_storedkey123456")
        result = await client.generate_image("a fox")
    assert "FLUX" in (result.generation_model or "")


async def test_generate_image_without_any_key_is_rejected_with_help(
    glimpse: GlimpseSandbox, me: tuple[str, str]
) -> None:
    """No stored key and no headers: Rejected, and the message says how to set one up."""
    async with glimpse.client(me[1]) as client:
        with pytest.raises(Rejected) as info:
            await client.generate_image("a fox")
    assert "image-generation" in str(info.value)


async def test_generate_image_needs_provider_and_key_together(
    glimpse: GlimpseSandbox, me: tuple[str, str]
) -> None:
    """Passing only one of provider/provider_key is a caller bug caught before any request."""
    async with glimpse.client(me[1]) as client:
        with pytest.raises(ValueError):
            await client.generate_image("a fox", provider="huggingface")
    assert glimpse.world.stats.requests == 0


@pytest.mark.parametrize("source", ["image_url", "image_b64", "image_bytes"])
async def test_create_post_from_each_image_source(
    glimpse: GlimpseSandbox, me: tuple[str, str], source: str
) -> None:
    """create_post() posts by URL, by base64, and by multipart upload."""
    data = png_for("post")
    value: Any = {
        "image_url": IMG,
        "image_b64": base64.b64encode(data).decode(),
        "image_bytes": data,
    }[source]
    async with glimpse.client(me[1]) as client:
        post = await client.create_post(
            caption="fog #mist",
            is_nsfw=True,
            generation_model="m",
            generation_prompt="fog",
            **{source: value},
        )
    assert post.seq > 0 and post.agent_id == me[0] and post.hashtags == ["mist"]
    assert post.is_nsfw and post.generation_prompt == "fog" and post.image_url
    assert [p.id for p in glimpse.world.posts_by(me[0])] == [post.id]


async def test_create_post_needs_exactly_one_image_source(
    glimpse: GlimpseSandbox, me: tuple[str, str]
) -> None:
    """No image, or two images, is refused before any request is sent."""
    async with glimpse.client(me[1]) as client:
        with pytest.raises(ValueError):
            await client.create_post(caption="none")
        with pytest.raises(ValueError):
            await client.create_post(caption="two", image_url=IMG, image_bytes=b"x")
    assert glimpse.world.stats.requests == 0


async def test_get_and_delete_post(glimpse: GlimpseSandbox, me: tuple[str, str]) -> None:
    """get_post() reads a post; after delete_post() it is a Rejected 404."""
    async with glimpse.client(me[1]) as client:
        post = await client.create_post(caption="short-lived", image_url=IMG)
        assert (await client.get_post(post.id)).caption == "short-lived"
        await client.delete_post(post.id)
        with pytest.raises(Rejected) as info:
            await client.get_post(post.id)
    assert info.value.status == 404 and "post_not_found" in str(info.value)


# ---------------------------------------------------------------------- interactions


async def test_comment_and_read_comments(
    glimpse: GlimpseSandbox, me: tuple[str, str], other: tuple[str, str]
) -> None:
    """comment() returns the comment; post_comments() lists it with author and post."""
    post_id = glimpse.world.post_as(other[0], "their post")
    async with glimpse.client(me[1]) as client:
        made = await client.comment(post_id, "Lovely light.")
        page = await client.post_comments(post_id)
    assert made.content == "Lovely light." and made.post_id == post_id
    assert [(c.id, c.agent_id, c.agent_name) for c in page] == [(made.id, me[0], "me_agent")]


async def test_reactions_and_likes_list(
    glimpse: GlimpseSandbox, me: tuple[str, str], other: tuple[str, str]
) -> None:
    """like/dislike/remove_reaction change the counts; post_likes() lists who liked."""
    post_id = glimpse.world.post_as(other[0], "their post")
    async with glimpse.client(me[1]) as client:
        await client.like(post_id)
        assert (await client.get_post(post_id)).like_count == 1
        assert [a.id for a in await client.post_likes(post_id)] == [me[0]]
        await client.dislike(post_id)
        post = await client.get_post(post_id)
        assert (post.like_count, post.dislike_count) == (0, 1)
        await client.remove_reaction(post_id)
        post = await client.get_post(post_id)
        assert (post.like_count, post.dislike_count) == (0, 0)


async def test_post_likes_cursor_pages(glimpse: GlimpseSandbox, other: tuple[str, str]) -> None:
    """post_likes() pages with next_cursor until it is None."""
    post_id = glimpse.world.post_as(other[0], "popular")
    fans = [glimpse.agent(f"fan_{i}")[0] for i in range(5)]
    for fan in fans:
        glimpse.world.like_as(fan, post_id)
    seen: list[str] = []
    async with glimpse.client() as client:
        cursor: str | None = None
        while True:
            page = await client.post_likes(post_id, cursor=cursor, limit=2)
            seen += [a.id for a in page]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert seen == list(reversed(fans))


async def test_follow_unfollow_and_feed(
    glimpse: GlimpseSandbox, me: tuple[str, str], other: tuple[str, str]
) -> None:
    """The feed holds posts of followed agents only; unfollow() removes them again."""
    third = glimpse.agent("third_agent")
    glimpse.world.post_as(other[0], "followed post")
    glimpse.world.post_as(third[0], "not followed")
    async with glimpse.client(me[1]) as client:
        await client.follow(other[0])
        assert [p.caption for p in await client.feed()] == ["followed post"]
        assert glimpse.world.follows_by(me[0]) == [other[0]]
        await client.unfollow(other[0])
        assert list(await client.feed()) == []


async def test_timeline_explore_hashtag_discover(
    glimpse: GlimpseSandbox, me: tuple[str, str], other: tuple[str, str]
) -> None:
    """public_timeline is newest first, explore most liked first, hashtag filters by tag, and
    discover returns posts and agents."""
    old = glimpse.world.post_as(other[0], "old and loved #fog")
    glimpse.world.post_as(other[0], "new #sea")
    glimpse.world.like_as(me[0], old)
    async with glimpse.client() as client:
        assert [p.caption for p in await client.public_timeline()] == [
            "new #sea",
            "old and loved #fog",
        ]
        assert (await client.explore()).items[0].id == old
        assert [p.id for p in await client.hashtag("#fog")] == [old]
        found = await client.discover()
    assert {p.id for p in found.posts} >= {old} and found.agents


async def test_heartbeat_limits_and_helpers(glimpse: GlimpseSandbox, me: tuple[str, str]) -> None:
    """heartbeat() marks the agent active; limits() returns the server's table; the caption
    and prompt helpers return text."""
    async with glimpse.client(me[1]) as client:
        await client.heartbeat()
        table = await client.limits(me[0])
        captions = await client.suggest_captions(prompt="a fox in fog", hashtags=["fog"])
        better = await client.optimize_prompt("a fox", style="ink")
    assert glimpse.world.agent_record(me[0]).last_active_at == glimpse.clock.now()
    assert table["limits"]["posts"]["limit"] == 6
    assert captions and all("#fog" in c for c in captions)
    assert "a fox" in better and better != "a fox"


async def test_pages_follow_the_link_header(
    glimpse: GlimpseSandbox, other: tuple[str, str]
) -> None:
    """next_max_id / prev_since_id come from the Link header and walk without overlap."""
    ids = [glimpse.world.post_as(other[0], f"p{i}") for i in range(5)]
    async with glimpse.client() as client:
        first = await client.public_timeline(limit=2)
        assert set(first.links) == {"next", "prev"}
        second = await client.public_timeline(max_id=first.next_max_id, limit=2)
        third = await client.public_timeline(max_id=second.next_max_id, limit=2)
        newer = await client.public_timeline(since_id=third.prev_since_id, limit=40)
    walked = [p.id for page in (first, second, third) for p in page]
    assert walked == list(reversed(ids)) and third.next_max_id is None
    assert [p.id for p in newer] == list(reversed(ids[1:]))


# ---------------------------------------------------------------------- errors


async def test_wrong_key_is_unauthorized(glimpse: GlimpseSandbox) -> None:
    """A key the server does not know is Unauthorized (401), with the server's code."""
    async with glimpse.client("glm_not_a_real_key_000000") as client:
        with pytest.raises(Unauthorized) as info:
            await client.me()
    assert info.value.status == 401 and "invalid_api_key" in str(info.value)
    assert not isinstance(info.value, NotVerified)


async def test_forbidden_is_unauthorized(
    glimpse: GlimpseSandbox, me: tuple[str, str], other: tuple[str, str]
) -> None:
    """A 403 that is not about verification is Unauthorized, not NotVerified."""
    async with glimpse.client(me[1]) as client:
        with pytest.raises(Unauthorized) as info:
            await client.limits(other[0])
    assert info.value.status == 403 and not isinstance(info.value, NotVerified)


async def test_unknown_post_is_rejected(glimpse: GlimpseSandbox, me: tuple[str, str]) -> None:
    """A 404 is Rejected (not retryable) and names method, path and the server's code."""
    async with glimpse.client(me[1]) as client:
        with pytest.raises(Rejected) as info:
            await client.like("no-such-post")
    assert not info.value.retryable
    assert "POST /posts/no-such-post/like" in str(info.value) and "post_not_found" in str(
        info.value
    )


@pytest.mark.parametrize(
    "action", ["like twice", "like own", "follow twice", "follow self", "dislike twice"]
)
async def test_repeated_or_self_actions_are_conflicts(
    glimpse: GlimpseSandbox, me: tuple[str, str], other: tuple[str, str], action: str
) -> None:
    """Already-done actions raise Conflict, which callers treat as done."""
    theirs = glimpse.world.post_as(other[0], "theirs")
    mine = glimpse.world.post_as(me[0], "mine")
    async with glimpse.client(me[1]) as client:
        with pytest.raises(Conflict):
            if action == "like twice":
                await client.like(theirs)
                await client.like(theirs)
            elif action == "dislike twice":
                await client.dislike(theirs)
                await client.dislike(theirs)
            elif action == "like own":
                await client.like(mine)
            elif action == "follow twice":
                await client.follow(other[0])
                await client.follow(other[0])
            else:
                await client.follow(me[0])


async def test_rate_limit_is_rate_limited_with_wait_and_bucket(
    glimpse: GlimpseSandbox, me: tuple[str, str]
) -> None:
    """A 429 is RateLimited with retry_after (from Retry-After) and the bucket."""
    async with glimpse.client(me[1]) as client:
        for _ in range(10):
            await client.get_image_settings()
        with pytest.raises(RateLimited) as info:
            await client.get_image_settings()
    assert info.value.bucket == "settings" and info.value.retry_after == 60
    assert info.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(
    glimpse: GlimpseSandbox, me: tuple[str, str], status: int
) -> None:
    """5xx answers are Unavailable (retryable), and only the armed path fails."""
    glimpse.world.faults.fail(status, path="/agents/me")
    async with glimpse.client(me[1]) as client:
        assert list(await client.public_timeline()) == []
        with pytest.raises(Unavailable) as info:
            await client.me()
        assert info.value.status == status and info.value.retryable
        assert (await client.me()).id == me[0]


async def test_timeout_is_unavailable(glimpse: GlimpseSandbox, me: tuple[str, str]) -> None:
    """A request that gets no answer in time is NoAnswer, an Unavailable."""
    glimpse.world.faults.hang(2.0, path="/heartbeat")
    async with glimpse.client(me[1], timeout=0.2) as client:
        with pytest.raises(Unavailable) as info:
            await client.heartbeat()
    assert isinstance(info.value, NoAnswer)
    glimpse.world.faults.release()


async def test_connection_refused_is_unavailable() -> None:
    """Nothing listening on the port: Unavailable, not an httpx exception."""
    async with GlimpseClient("http://127.0.0.1:9/api/v1", "glm_whatever_12345") as client:
        with pytest.raises(Unavailable):
            await client.public_timeline()


async def test_html_answer_is_bad_response(glimpse: GlimpseSandbox, me: tuple[str, str]) -> None:
    """A 200 with a body that is not JSON is BadResponse, for reads and for writes."""
    glimpse.world.faults.garbage(times=2)
    async with glimpse.client(me[1]) as client:
        with pytest.raises(BadResponse):
            await client.me()
        with pytest.raises(BadResponse):
            await client.follow("anyone")


# ---------------------------------------------------------------------- odd shapes

_SCRIPT: dict[str, tuple[int, Any, dict[str, str]]] = {}


async def _scripted(request: Request) -> Response:
    status, body, headers = _SCRIPT.get(request.url.path, (404, {"error": "nope"}, {}))
    if isinstance(body, bytes):
        return Response(body, status, headers=headers, media_type="application/json")
    return JSONResponse(body, status, headers=headers)


@pytest.fixture(scope="module")
def odd_server(serve_module: Callable[[Any], str]) -> str:
    """A tiny server that answers whatever the test scripted, shapes a real server might use."""
    return serve_module(
        Starlette(routes=[Route("/{path:path}", _scripted, methods=["GET", "POST"])])
    )


def script(path: str, body: Any, status: int = 200, **headers: str) -> None:
    _SCRIPT.clear()
    _SCRIPT[path] = (status, body, headers)


_POST = {
    "id": 7,
    "seq": 3,
    "caption": "hi #Fog",
    "likes_count": 2,
    "author": {"id": "a1", "name": "ann"},
    "created_at": "2025-03-03T09:00:00Z",
    "surprise": {"nested": True},
}


@pytest.mark.parametrize(
    "body",
    [
        [_POST],
        {"posts": [_POST]},
        {"data": [_POST]},
        {"items": [_POST]},
        {"data": {"posts": [_POST]}},
    ],
)
async def test_lists_accept_every_envelope(odd_server: str, body: Any) -> None:
    """A bare list and {posts|data|items: [...]} all read; alternative field names map."""
    script("/timeline/public", body)
    async with GlimpseClient(odd_server) as client:
        page = await client.public_timeline()
    post = page.items[0]
    assert (post.id, post.seq, post.agent_id, post.agent_name) == ("7", 3, "a1", "ann")
    assert post.like_count == 2 and post.hashtags == ["fog"] and post.created_at is not None
    assert page.prev_since_id == 3 and page.next_max_id is None  # no Link: from seq


async def test_one_malformed_item_does_not_lose_the_page(odd_server: str) -> None:
    """Items that cannot be read are skipped; a list of nothing readable is BadResponse."""
    script("/explore", [_POST, {"caption": "no id"}])
    async with GlimpseClient(odd_server) as client:
        assert [p.id for p in await client.explore()] == ["7"]
        script("/explore", [{"caption": "no id"}])
        with pytest.raises(BadResponse):
            await client.explore()
        script("/explore", {"message": "no list here"})
        with pytest.raises(BadResponse):
            await client.explore()


async def test_wrong_object_shape_is_bad_response(odd_server: str) -> None:
    """A 2xx object missing required fields is BadResponse, and the message quotes no input."""
    script("/agents/me", {"agent": {"name": "no id", "token": "glm_SHOULDNOTLEAK123"}})
    async with GlimpseClient(odd_server, "glm_x_123456") as client:
        with pytest.raises(BadResponse) as info:
            await client.me()
    assert "SHOULDNOTLEAK" not in str(info.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (["a", "b"], ["a", "b"]),
        ([{"caption": "a"}, {"text": "b"}], ["a", "b"]),
        ({"suggestions": ["a", {"caption": "b"}]}, ["a", "b"]),
        ({"captions": [{"text": "a"}]}, ["a"]),
    ],
)
async def test_caption_suggestions_in_any_shape(
    odd_server: str, body: Any, expected: list[str]
) -> None:
    """suggest_captions() reads lists of strings or of objects, wrapped or not."""
    script("/captions/suggest", body)
    async with GlimpseClient(odd_server, "glm_x_123456") as client:
        assert await client.suggest_captions(prompt="x") == expected


@pytest.mark.parametrize(
    "body",
    [
        {"optimized_prompt": "better"},
        {"prompt": "better"},
        {"data": {"optimized": "better"}},
        "better",
    ],
)
async def test_optimized_prompt_in_any_shape(odd_server: str, body: Any) -> None:
    """optimize_prompt() reads {"optimized_prompt"|"prompt"|...} or a bare string."""
    script("/prompts/optimize", body)
    async with GlimpseClient(odd_server, "glm_x_123456") as client:
        assert await client.optimize_prompt("x") == "better"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"error": {"code": "already_liked", "message": "x", "status": 400}}, Conflict),
        (400, {"error": "You already liked this post"}, Conflict),
        (400, {"detail": "caption too long"}, Rejected),
        (403, {"error": {"code": "email_not_verified", "message": "x"}}, NotVerified),
        (403, {"code": "forbidden", "message": "Please verify your email"}, NotVerified),
        (401, {"error": {"code": "unauthorized", "message": "bad key"}}, Unauthorized),
        (409, {}, Conflict),
        (422, {"detail": [{"loc": ["body"], "msg": "bad"}]}, Rejected),
        (408, {}, Unavailable),
        (504, b"<html>gateway</html>", Unavailable),
    ],
)
async def test_error_shapes_map_to_our_errors(
    odd_server: str, status: int, body: Any, expected: type[Exception]
) -> None:
    """Each error body shape a server might use maps to the right error class."""
    script("/posts/p1/like", body, status)
    async with GlimpseClient(odd_server, "glm_x_123456") as client:
        with pytest.raises(expected) as info:
            await client.like("p1")
    assert type(info.value) is expected


async def test_429_without_retry_after_waits_for_reset(odd_server: str) -> None:
    """Without Retry-After, retry_after comes from X-RateLimit-Reset; the bucket from the body."""
    from glimpse_agent.clock import SimulatedClock, utc

    clock = SimulatedClock(utc(2025, 3, 3, 9))
    reset = int(utc(2025, 3, 3, 9, 5).timestamp())
    script(
        "/posts/p1/comment",
        {"error": {"code": "rate_limit_exceeded", "bucket": "comments"}},
        429,
        **{
            "X-RateLimit-Limit": "30",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        },
    )
    async with GlimpseClient(odd_server, "glm_x_123456", clock=clock) as client:
        with pytest.raises(RateLimited) as info:
            await client.comment("p1", "hi")
        assert client.rate_limits["comments"].remaining == 0
    assert info.value.retry_after == 300 and info.value.bucket == "comments"


def test_page_is_iterable_and_sized() -> None:
    """A Page iterates and counts its items."""
    page: Page[Post] = Page(items=[Post.model_validate(_POST)])
    assert len(page) == 1 and [p.id for p in page] == ["7"]
