"""Every paged list of the client walks the same way against the emulator over real HTTP:
``limit`` caps a page, ``max_id`` from the Link header's ``next`` goes older without overlap
or gap, ``since_id`` from ``prev`` asks only for newer items, and the last page has no
``next``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from glimpse_agent.glimpse import GlimpseClient, Page
from glimpse_agent.sandbox.glimpse.testing import GlimpseSandbox

Fetch = Callable[..., Awaitable[Page[Any]]]


def make(
    glimpse: GlimpseSandbox, kind: str
) -> tuple[str | None, Callable[[GlimpseClient], Fetch], list[str]]:
    """Five items of one list, oldest first: (key to read with, the method, their ids)."""
    me, key = glimpse.agent("reader")
    author, _ = glimpse.agent("author")
    world = glimpse.world
    if kind in {"feed", "timeline", "hashtag", "agent_posts"}:
        ids = [world.post_as(author, f"post {i} #walk") for i in range(5)]
        world.post_as(me, "not tagged, not by author")
        if kind == "feed":
            world.follow_as(me, author)
            return key, lambda c: c.feed, ids
        if kind == "timeline":
            ids.append(world.posts_by(me)[0].id)
            return None, lambda c: c.public_timeline, ids
        if kind == "hashtag":
            return None, lambda c: lambda **kw: c.hashtag("walk", **kw), ids
        return None, lambda c: lambda **kw: c.agent_posts(author, **kw), ids
    if kind == "comments":
        post = world.post_as(author, "talk to me")
        ids = [world.comment_as(me, post, f"comment {i}") for i in range(5)]
        return None, lambda c: lambda **kw: c.post_comments(post, **kw), ids
    fans = [glimpse.agent(f"fan_{i}")[0] for i in range(5)]
    if kind == "followers":
        for fan in fans:
            world.follow_as(fan, author)
        return None, lambda c: lambda **kw: c.followers(author, **kw), fans
    assert kind == "following"
    for fan in fans:
        world.follow_as(author, fan)
    return None, lambda c: lambda **kw: c.following(author, **kw), fans


KINDS = ["feed", "timeline", "hashtag", "agent_posts", "comments", "followers", "following"]


@pytest.mark.parametrize("kind", KINDS)
async def test_every_list_walks_by_max_id_and_since_id(glimpse: GlimpseSandbox, kind: str) -> None:
    """Pages of 2 cover the list newest first exactly once; since_id returns only newer."""
    key, method, oldest_first = make(glimpse, kind)
    expected = list(reversed(oldest_first))
    async with glimpse.client(key) as client:
        fetch = method(client)
        pages = [await fetch(limit=2)]
        while pages[-1].next_max_id is not None:
            assert len(pages) < 10, "pagination does not end"
            assert "next" in pages[-1].links
            pages.append(await fetch(max_id=pages[-1].next_max_id, limit=2))
        assert all(len(p) <= 2 for p in pages)
        assert "next" not in pages[-1].links
        walked = [item.id for p in pages for item in p]
        assert walked == expected
        # From the oldest page's prev cursor: everything newer than its newest item.
        newer = await fetch(since_id=pages[-1].prev_since_id, limit=40)
        assert [item.id for item in newer] == expected[: len(expected) - len(pages[-1])]
        assert len(await fetch(limit=1)) == 1


async def test_explore_caps_its_single_ranked_page(glimpse: GlimpseSandbox) -> None:
    """explore(limit=) is most liked first and holds at most ``limit`` posts."""
    author, _ = glimpse.agent("author")
    fans = [glimpse.agent(f"fan_{i}")[0] for i in range(3)]
    posts = [glimpse.world.post_as(author, f"p{i}") for i in range(4)]
    for n, post in enumerate(posts[:3]):
        for fan in fans[: n + 1]:
            glimpse.world.like_as(fan, post)
    async with glimpse.client() as client:
        top = await client.explore(limit=2)
    assert [p.id for p in top] == [posts[2], posts[1]]
    assert top.items[0].like_count == 3


@pytest.mark.parametrize("limit", [0, 41])
async def test_a_limit_outside_1_to_40_is_rejected(glimpse: GlimpseSandbox, limit: int) -> None:
    """The emulator enforces limit 1-40 and the client reports it as Rejected (400)."""
    from glimpse_agent.errors import Rejected

    async with glimpse.client() as client:
        with pytest.raises(Rejected) as info:
            await client.public_timeline(limit=limit)
    assert info.value.status == 400
