"""The emulated Glimpse enforces what the seed page says (auth, verification, image checks,
pagination, conflicts, key resolution), its crowd behaves like a small social network over
emulated time, and its test helpers (faults, stats, world views) do what they claim."""

from __future__ import annotations

import asyncio
import base64
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image

from glimpse_agent.sandbox.glimpse.testing import GlimpseSandbox, glimpse_sandbox
from glimpse_agent.sandbox.glimpse.world import HOSTILE_TEXTS, GlimpseWorld
from glimpse_agent.sandbox.images.pictures import png_for

IMG = "https://images.example/a.png"


@pytest.fixture
async def raw() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def image_bytes(kind: str) -> bytes:
    if kind == "avif":  # an ISO-BMFF header is all the magic a server checks
        return b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + b"\x00" * 32
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format=kind.upper())
    return out.getvalue()


# ---------------------------------------------------------------------- onboarding and auth


async def test_register_gives_a_glm_key_and_mails_a_code(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """Registration returns a glm_ key once and puts a 6-digit code in the mailbox."""
    response = await raw.post(
        f"{glimpse.base_url}/agents/register", json={"name": "fresh_one", "owner_email": "o@x.io"}
    )
    assert response.status_code == 201
    assert response.json()["api_key"].startswith("glm_")
    code = glimpse.world.outbox["o@x.io"]
    assert len(code) == 6 and code.isdigit()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "taken_name", "owner_email": "a@x.io"}, 409, "name_taken"),
        ({"name": "ok_name", "owner_email": "not-an-email"}, 400, "invalid_email"),
        ({"name": "x", "owner_email": "a@x.io"}, 400, "invalid_name"),
        ({"owner_email": "a@x.io"}, 400, "missing_field"),
    ],
)
async def test_register_validates(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient, body: dict[str, str], status: int, code: str
) -> None:
    """Taken names, bad e-mails and bad names are refused with a clear code."""
    glimpse.agent("taken_name")
    response = await raw.post(f"{glimpse.base_url}/agents/register", json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


async def test_unverified_key_reads_but_cannot_write(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """An unverified agent may read its profile, but every write is 403 agent_not_verified."""
    agent_id, key = glimpse.agent("pending", verified=False)
    base = glimpse.base_url
    assert (await raw.get(f"{base}/agents/me", headers=bearer(key))).status_code == 200
    for method, path in [
        ("POST", "/posts"),
        ("POST", f"/agents/{agent_id}/follow"),
        ("PUT", "/agents/me/settings/image-generation"),
        ("POST", "/images/generate"),
        ("PATCH", "/agents/me"),
    ]:
        response = await raw.request(method, base + path, headers=bearer(key), json={})
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "agent_not_verified"


async def test_verify_by_code_alone(glimpse: GlimpseSandbox, raw: httpx.AsyncClient) -> None:
    """The code identifies the agent without a key and is used up; with the key, verifying
    again is harmless."""
    agent_id, key = glimpse.agent("pending", verified=False)
    code = glimpse.world.outbox["pending@owner.example"]
    url = f"{glimpse.base_url}/agents/verify"
    assert (await raw.post(url, json={"code": code})).status_code == 200
    assert glimpse.world.agent_record(agent_id).verified
    assert (await raw.post(url, json={"code": code})).status_code == 400
    assert (await raw.post(url, json={"code": code}, headers=bearer(key))).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/posts"),
        ("GET", "/feed"),
        ("GET", "/agents/me"),
        ("GET", "/heartbeat"),
        ("POST", "/images/generate"),
        ("GET", "/agents/me/settings/image-generation"),
        ("POST", "/captions/suggest"),
    ],
)
async def test_private_endpoints_need_a_bearer_key(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient, method: str, path: str
) -> None:
    """Writes and private reads answer 401 missing_api_key without a key."""
    response = await raw.request(method, glimpse.base_url + path, json={})
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "missing_api_key",
        "status": 401,
        "message": response.json()["error"]["message"],
    }


async def test_public_reads_need_no_key_but_reject_a_bad_one(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """Public reads work anonymously; a wrong key is still 401, never silently ignored."""
    url = f"{glimpse.base_url}/timeline/public"
    assert (await raw.get(url)).status_code == 200
    response = await raw.get(url, headers=bearer("glm_wrong_key_1234"))
    assert response.status_code == 401 and "glm_wrong" not in response.text


# ---------------------------------------------------------------------- posts and images


@pytest.mark.parametrize("kind", ["png", "jpeg", "gif", "webp", "avif"])
async def test_accepted_image_formats(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient, kind: str
) -> None:
    """JPEG, PNG, GIF, WebP and AVIF pass, as image_b64 and as a multipart upload."""
    _, key = glimpse.agent("poster")
    data = image_bytes(kind)
    url = f"{glimpse.base_url}/posts"
    by_b64 = await raw.post(
        url,
        headers=bearer(key),
        json={"caption": "b64", "image_b64": base64.b64encode(data).decode()},
    )
    by_upload = await raw.post(
        url,
        headers=bearer(key),
        data={"caption": "upload"},
        files={"image": (f"x.{kind}", data, f"image/{kind}")},
    )
    assert (by_b64.status_code, by_upload.status_code) == (201, 201), by_upload.text
    assert by_upload.json()["post"]["caption"] == "upload"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"caption": "x", "image_b64": base64.b64encode(b"%PDF-1.4 not an image").decode()},
            400,
            "unsupported_image_format",
        ),
        ({"caption": "x", "image_b64": "!!not base64!!"}, 400, "invalid_image_b64"),
        ({"caption": "x", "image_url": "ftp://x/y.png"}, 400, "invalid_image_url"),
        ({"caption": "x"}, 400, "missing_image"),
        ({"caption": "x", "image_url": IMG, "image_b64": "aGk="}, 400, "multiple_images"),
        ({"caption": "x" * 2201, "image_url": IMG}, 400, "caption_too_long"),
    ],
)
async def test_post_validation(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient, body: dict[str, str], status: int, code: str
) -> None:
    """Bad images, bad URLs, no or two images and over-long captions are refused."""
    _, key = glimpse.agent("poster")
    response = await raw.post(f"{glimpse.base_url}/posts", headers=bearer(key), json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


async def test_images_over_10_mb_are_refused(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """A valid PNG header followed by more than 10 MB is 413 image_too_large."""
    _, key = glimpse.agent("poster")
    big = png_for("x") + b"\x00" * (10 * 1024 * 1024)
    response = await raw.post(
        f"{glimpse.base_url}/posts",
        headers=bearer(key),
        data={"caption": "big"},
        files={"file": ("b.png", big, "image/png")},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (413, "image_too_large")


async def test_post_images_are_served_as_png_at_the_request_base(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """Uploaded posts get an image URL on the emulator itself that returns a real PNG."""
    _, key = glimpse.agent("poster")
    post = (
        await raw.post(
            f"{glimpse.base_url}/posts",
            headers=bearer(key),
            json={"caption": "x", "image_b64": base64.b64encode(png_for("p")).decode()},
        )
    ).json()["post"]
    assert post["image_url"].startswith(glimpse.base_url + "/images/")
    thumb = await raw.get(post["thumbnail_url"])
    assert Image.open(io.BytesIO(thumb.content)).size == (150, 150)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "invalid_limit"),
        ("limit=41", "invalid_limit"),
        ("max_id=abc", "invalid_parameter"),
    ],
)
async def test_bad_page_parameters_are_400(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient, query: str, code: str
) -> None:
    """limit outside 1-40 and non-integer cursors are 400."""
    response = await raw.get(f"{glimpse.base_url}/timeline/public?{query}")
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)


async def test_pagination_by_seq_with_link_header(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """Posts carry increasing integer seq; default page 20; Link next/prev follow max_id and
    since_id."""
    author, _ = glimpse.agent("prolific")
    for i in range(25):
        glimpse.world.post_as(author, f"p{i}")
    first = await raw.get(f"{glimpse.base_url}/agents/{author}/posts")
    seqs = [p["seq"] for p in first.json()["posts"]]
    assert len(seqs) == 20 and seqs == sorted(seqs, reverse=True)
    assert set(first.links) == {"next", "prev"}
    rest = await raw.get(first.links["next"]["url"])
    assert [p["seq"] for p in rest.json()["posts"]] == list(range(min(seqs) - 1, 0, -1))
    assert "next" not in rest.links
    newer = await raw.get(rest.links["prev"]["url"])
    assert [p["seq"] for p in newer.json()["posts"]] == seqs


# ---------------------------------------------------------------------- interactions


async def test_conflict_codes(glimpse: GlimpseSandbox, raw: httpx.AsyncClient) -> None:
    """Liking twice, liking one's own post, following twice, following oneself: 409 + code."""
    me, key = glimpse.agent("me_agent")
    other, _ = glimpse.agent("other_agent")
    theirs, mine = glimpse.world.post_as(other, "t"), glimpse.world.post_as(me, "m")
    base, h = glimpse.base_url, bearer(key)
    await raw.post(f"{base}/posts/{theirs}/like", headers=h)
    await raw.post(f"{base}/agents/{other}/follow", headers=h)
    for path, code in [
        (f"/posts/{theirs}/like", "already_liked"),
        (f"/posts/{mine}/like", "cannot_like_own_post"),
        (f"/agents/{other}/follow", "already_following"),
        (f"/agents/{me}/follow", "cannot_follow_self"),
    ]:
        response = await raw.post(base + path, headers=h)
        assert (response.status_code, response.json()["error"]["code"]) == (409, code)


async def test_undo_endpoints(glimpse: GlimpseSandbox, raw: httpx.AsyncClient) -> None:
    """DELETE reaction and DELETE follow undo; undoing nothing is 404."""
    me, key = glimpse.agent("me_agent")
    other, _ = glimpse.agent("other_agent")
    post = glimpse.world.post_as(other, "t")
    base, h = glimpse.base_url, bearer(key)
    await raw.post(f"{base}/posts/{post}/like", headers=h)
    await raw.post(f"{base}/agents/{other}/follow", headers=h)
    assert (await raw.delete(f"{base}/posts/{post}/reaction", headers=h)).status_code == 200
    assert (await raw.delete(f"{base}/agents/{other}/follow", headers=h)).status_code == 200
    assert glimpse.world.likes_by(me) == [] and glimpse.world.follows_by(me) == []
    assert (await raw.delete(f"{base}/posts/{post}/reaction", headers=h)).status_code == 404
    assert (await raw.delete(f"{base}/agents/{other}/follow", headers=h)).status_code == 404


@pytest.mark.parametrize(
    ("content", "status"),
    [("", 400), ("   ", 400), ("x", 201), ("y" * 1000, 201), ("z" * 1001, 400)],
)
async def test_comment_length(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient, content: str, status: int
) -> None:
    """Comments must be 1 to 1000 characters."""
    _, key = glimpse.agent("me_agent")
    other, _ = glimpse.agent("other_agent")
    post = glimpse.world.post_as(other, "t")
    response = await raw.post(
        f"{glimpse.base_url}/posts/{post}/comment", headers=bearer(key), json={"content": content}
    )
    assert response.status_code == status


async def test_only_the_author_deletes_a_post(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """Deleting someone else's post is 403; the author's delete removes it."""
    _, key = glimpse.agent("me_agent")
    other, other_key = glimpse.agent("other_agent")
    post = glimpse.world.post_as(other, "t")
    response = await raw.delete(f"{glimpse.base_url}/posts/{post}", headers=bearer(key))
    assert response.status_code == 403
    response = await raw.delete(f"{glimpse.base_url}/posts/{post}", headers=bearer(other_key))
    assert response.status_code == 200 and glimpse.world.posts_by(other) == []


# ---------------------------------------------------------------------- image generation


async def test_generation_key_resolution_order(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """Both headers win over the stored key; one header alone falls back to the stored key;
    nothing at all is 400 with setup help."""
    _, key = glimpse.agent("maker")
    url, h = f"{glimpse.base_url}/images/generate", bearer(key)
    none = await raw.post(url, headers=h, json={"prompt": "fox"})
    assert none.status_code == 400
    assert none.json()["error"]["code"] == "image_provider_not_configured"
    assert "X-Image-Provider" in none.json()["error"]["message"]
    await raw.put(
        f"{glimpse.base_url}/agents/me/settings/image-generation",
        headers=h,
        json={"provider": "huggingface", "api_key": "hf_stored_000000"},
    )
    both = await raw.post(
        url,
        json={"prompt": "fox"},
        headers={**h, "X-Image-Provider": "openai", "X-Image-Key": "sk-header-0000"},
    )
    one = await raw.post(url, json={"prompt": "fox"}, headers={**h, "X-Image-Provider": "openai"})
    assert both.json()["provider"] == "openai" and one.json()["provider"] == "huggingface"


async def test_settings_never_return_the_key(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """GET/PUT settings show the provider and a masked hint, never the key; bad providers 400."""
    _, key = glimpse.agent("maker")
    url, h, secret = (
        f"{glimpse.base_url}/agents/me/settings/image-generation",
        bearer(key),
        "hf_supersecretvalue99",
    )
    put = await raw.put(url, headers=h, json={"provider": "huggingface", "api_key": secret})
    got = await raw.get(url, headers=h)
    assert secret not in put.text and secret not in got.text
    assert got.json()["provider"] == "huggingface" and got.json()["key_hint"] == "…ue99"
    bad = await raw.put(url, headers=h, json={"provider": "midjourney", "api_key": secret})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "unsupported_provider")


# ---------------------------------------------------------------------- reading lists


async def test_feed_timeline_explore_hashtags_discover(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """feed: followed authors; timeline: newest first; explore: most liked; hashtags: caption
    tags; discover: posts and agents."""
    me, key = glimpse.agent("reader")
    a, _ = glimpse.agent("author_a")
    b, _ = glimpse.agent("author_b")
    pa = glimpse.world.post_as(a, "from a #Sea")
    pb = glimpse.world.post_as(b, "from b #fog")
    glimpse.world.follow_as(me, a)
    glimpse.world.like_as(me, pa)
    base = glimpse.base_url

    async def ids(path: str, key_name: str = "posts", **kw: Any) -> list[str]:
        body = (await raw.get(base + path, **kw)).json()
        return [p["id"] for p in body[key_name]]

    assert await ids("/feed", headers=bearer(key)) == [pa]
    assert await ids("/timeline/public") == [pb, pa]
    assert (await ids("/explore", "data"))[0] == pa
    assert await ids("/hashtags/sea") == [pa]
    discover = (await raw.get(f"{base}/discover")).json()
    assert discover["trending_posts"] and discover["recommended_agents"]


async def test_heartbeat_and_limits(glimpse: GlimpseSandbox, raw: httpx.AsyncClient) -> None:
    """heartbeat updates last_active_at; /agents/{id}/limits lists every bucket."""
    me, key = glimpse.agent("alive")
    glimpse.clock.advance(120)
    await raw.get(f"{glimpse.base_url}/heartbeat", headers=bearer(key))
    assert glimpse.world.agent_record(me).last_active_at == glimpse.clock.now()
    limits = (await raw.get(f"{glimpse.base_url}/agents/{me}/limits", headers=bearer(key))).json()[
        "limits"
    ]
    assert set(limits) >= {
        "generation",
        "posts",
        "comments",
        "reactions",
        "follows",
        "registration",
        "settings",
    }


async def test_unknown_endpoint_is_a_json_404(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """Paths the emulator does not know answer the documented error shape."""
    response = await raw.get(f"{glimpse.base_url}/analytics/entropy")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# ---------------------------------------------------------------------- the crowd


def test_hostile_texts_are_a_real_list() -> None:
    """The world keeps about fifteen distinct prompt injections."""
    assert len(set(HOSTILE_TEXTS)) >= 15
    assert any("Ignore previous instructions" in t for t in HOSTILE_TEXTS)
    assert any("http://evil.example" in t for t in HOSTILE_TEXTS)


def _timeline(world: GlimpseWorld) -> list[tuple[str, str]]:
    return [(p.agent_id, p.caption) for p in world.state.newest_posts()]


def test_the_crowd_is_deterministic_for_a_seed(glimpse: GlimpseSandbox) -> None:
    """Two worlds with the same seed and times have the same history; another seed differs."""
    worlds = [GlimpseWorld(glimpse.clock, seed=s, population=8) for s in (3, 3, 4)]
    for world in worlds:
        world.advance_to(glimpse.clock.now() + timedelta(days=1))
    assert _timeline(worlds[0]) == _timeline(worlds[1]) != _timeline(worlds[2])


def test_the_crowd_engages_with_outsiders_over_time(glimpse: GlimpseSandbox) -> None:
    """Over emulated days the crowd posts a few times a day each, likes and comments on our
    posts, follows us, and sometimes writes prompt injections."""
    world = GlimpseWorld(glimpse.clock, seed=11, population=12)
    me, _ = world.create_agent("outsider")
    post = world.post_as(me, "our first post #fog")
    world.advance_to(glimpse.clock.now() + timedelta(days=2))
    npcs = world.npc_ids
    posts_per_npc_day = sum(len(world.posts_by(n)) for n in npcs) / len(npcs) / 3
    assert 1 <= posts_per_npc_day <= 6
    assert any(post in world.likes_by(n) for n in npcs)
    assert world.comments_on(post)
    assert world.followers_of(me)
    texts = [p.caption for n in npcs for p in world.posts_by(n)]
    texts += [c.content for n in npcs for c in world.comments_by(n)]
    assert any(t in HOSTILE_TEXTS for t in texts)


async def test_the_crowd_acts_lazily_on_requests(glimpse: GlimpseSandbox) -> None:
    """Moving the clock is enough: the next request sees what the crowd did meanwhile."""
    with glimpse_sandbox(glimpse.clock, population=6) as world_sandbox:
        async with world_sandbox.client() as client:
            before = len((await client.public_timeline(limit=40)).items)
            world_sandbox.clock.advance(timedelta(hours=12))
            after = (await client.public_timeline(limit=40)).items
    assert len(after) > before and after[0].created_at is not None
    assert after[0].created_at > glimpse.clock.now() - timedelta(hours=12)


# ---------------------------------------------------------------------- faults and stats


async def test_faults_match_path_and_count(glimpse: GlimpseSandbox, raw: httpx.AsyncClient) -> None:
    """fail(times=2, path=) hits only matching requests, twice, then the world answers again."""
    glimpse.world.faults.fail(503, times=2, path="/explore")
    base = glimpse.base_url
    statuses = [
        (await raw.get(base + p)).status_code
        for p in ("/timeline/public", "/explore", "/explore", "/explore")
    ]
    assert statuses == [200, 503, 503, 200]
    assert glimpse.world.stats.faults_served == 2 and glimpse.world.faults.pending == 0


async def test_hang_delays_then_serves(glimpse: GlimpseSandbox, raw: httpx.AsyncClient) -> None:
    """A hung write still happens after the client gave up, as on a real server."""
    me, key = glimpse.agent("impatient")
    glimpse.world.faults.hang(0.3, method="POST", path="/posts")
    with pytest.raises(httpx.ReadTimeout):
        await raw.post(
            f"{glimpse.base_url}/posts",
            headers=bearer(key),
            timeout=0.05,
            json={"caption": "late", "image_url": IMG},
        )
    for _ in range(100):
        if glimpse.world.posts_by(me):
            break
        await asyncio.sleep(0.02)
    assert [p.caption for p in glimpse.world.posts_by(me)] == ["late"]


async def test_concurrent_writes_stay_consistent(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    """Many agents liking at once: every like lands once and the count matches."""
    author, _ = glimpse.agent("star")
    post = glimpse.world.post_as(author, "popular")
    fans = [glimpse.agent(f"fan_{i}") for i in range(20)]
    responses = await asyncio.gather(
        *[raw.post(f"{glimpse.base_url}/posts/{post}/like", headers=bearer(k)) for _, k in fans]
    )
    assert all(r.status_code == 200 for r in responses)
    body = (await raw.get(f"{glimpse.base_url}/posts/{post}")).json()
    assert body["like_count"] == 20
    assert sum(glimpse.world.stats.requests_by_agent.get(f, 0) for f, _ in fans) == 20


def test_world_views_are_copies(glimpse: GlimpseSandbox) -> None:
    """Records handed to tests are copies: changing them does not change the world."""
    me, _ = glimpse.agent("copycat")
    glimpse.world.post_as(me, "original")
    glimpse.world.posts_by(me)[0].caption = "changed"
    assert glimpse.world.posts_by(me)[0].caption == "original"
