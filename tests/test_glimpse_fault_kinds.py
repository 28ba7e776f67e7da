"""The emulated Glimpse's fault kinds for the crash harness and the soaks, over real HTTP: a slow
apply writes after the client gave up, a drop writes and answers nothing, an endless body never
ends, canned and rewritten answers come out as given, the random mode is seeded, and the world
counts requests made before a 429's Retry-After had passed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from glimpse_agent.sandbox.glimpse.testing import GlimpseSandbox

IMG = "https://images.example/a.png"


@pytest.fixture
async def raw() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post(raw: httpx.AsyncClient, glimpse: GlimpseSandbox, key: str, **kw: object) -> object:
    return await raw.post(
        glimpse.base_url + "/posts",
        headers=bearer(key),
        json={"caption": "a fox", "image_url": IMG},
        **kw,  # type: ignore[arg-type]
    )


async def test_slow_apply_writes_after_the_client_gave_up(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    me, key = glimpse.agent("slow")
    glimpse.world.faults.slow_apply(0.5, path="/posts")
    with pytest.raises(httpx.ReadTimeout):
        await post(raw, glimpse, key, timeout=0.1)
    assert glimpse.world.posts_by(me) == []
    for _ in range(50):
        if glimpse.world.posts_by(me):
            break
        await asyncio.sleep(0.05)
    assert len(glimpse.world.posts_by(me)) == 1


async def test_drop_writes_and_answers_nothing(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    me, key = glimpse.agent("dropped")
    glimpse.world.faults.drop(path="/posts")
    with pytest.raises(httpx.RemoteProtocolError):
        await post(raw, glimpse, key)
    assert len(glimpse.world.posts_by(me)) == 1


async def test_endless_body_never_finishes(glimpse: GlimpseSandbox, raw: httpx.AsyncClient) -> None:
    _, key = glimpse.agent("endless")
    glimpse.world.faults.endless(0.05, path="/feed")
    got = b""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.6):
            async with raw.stream("GET", glimpse.base_url + "/feed", headers=bearer(key)) as r:
                assert r.status_code == 200
                async for chunk in r.aiter_raw():
                    got += chunk
    assert got.startswith(b'{"data": [') and len(got) > 12


async def test_answer_and_mutate_come_out_as_given(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    me, key = glimpse.agent("canned")
    glimpse.world.faults.answer(429, {"error": {"bucket": "x"}}, {"Retry-After": "inf"})
    r = await raw.get(glimpse.base_url + "/agents/me", headers=bearer(key))
    assert (r.status_code, r.headers["retry-after"], r.json()) == (
        429,
        "inf",
        {"error": {"bucket": "x"}},
    )
    plain = (await raw.get(glimpse.base_url + "/agents/me", headers=bearer(key))).json()
    glimpse.world.faults.mutate(lambda body: {**body, "odd": 7}, path="/agents/me")
    r = await raw.get(glimpse.base_url + "/agents/me", headers=bearer(key))
    assert r.status_code == 200 and r.json() == {**plain, "odd": 7} and me in r.text
    assert "x-ratelimit-limit" in r.headers


async def test_random_mode_is_seeded_and_stops(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    _, key = glimpse.agent("rnd")

    async def statuses() -> list[int]:
        out = []
        for _ in range(30):
            r = await raw.get(glimpse.base_url + "/agents/me", headers=bearer(key))
            out.append(r.status_code)
        return out

    glimpse.world.faults.randomly(0.5, seed=4, kinds=("status",))
    first = await statuses()
    glimpse.world.faults.randomly(0.5, seed=4, kinds=("status",))
    assert await statuses() == first
    assert {s for s in first if s != 200} <= {500, 502, 503, 504} and 200 in first
    assert any(s != 200 for s in first)
    glimpse.world.faults.randomly(0)
    assert set(await statuses()) == {200}
    assert glimpse.world.faults.served_by_kind["status"] == sum(s != 200 for s in first) * 2


async def test_requests_before_retry_after_are_counted(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    me, key = glimpse.agent("eager")
    for _ in range(6):
        assert (await post(raw, glimpse, key)).status_code == 201  # type: ignore[attr-defined]
    assert (await post(raw, glimpse, key)).status_code == 429  # type: ignore[attr-defined]
    assert glimpse.world.stats.retry_after_violations == {}
    await post(raw, glimpse, key)
    assert glimpse.world.stats.retry_after_violations == {(me, "posts"): 1}


async def test_a_second_like_is_counted_as_a_repeat(
    glimpse: GlimpseSandbox, raw: httpx.AsyncClient
) -> None:
    me, key = glimpse.agent("twice")
    other, _ = glimpse.agent("other")
    post_id = glimpse.world.post_as(other, "a heron")
    for _ in range(2):
        await raw.post(f"{glimpse.base_url}/posts/{post_id}/like", headers=bearer(key))
    assert glimpse.world.stats.repeats == {(me, "already_liked"): 1}
