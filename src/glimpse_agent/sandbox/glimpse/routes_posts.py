"""Emulated Glimpse endpoints about posts: creating and deleting them, reactions, comments,
follows, and the reading lists (feed, public timeline, explore, discover, hashtags).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from glimpse_agent.sandbox.glimpse.state import ApiError, PostRec
from glimpse_agent.sandbox.glimpse.views import (
    Ctx,
    Endpoint,
    Reply,
    agent_json,
    check_image,
    comment_json,
    decode_b64,
    flag,
    page_limit,
    paginate,
    post_json,
)

_TRENDING = timedelta(days=3)


def _post_id(ctx: Ctx) -> str:
    return ctx.path_params["post_id"]


# ---------------------------------------------------------------------- posts


def create_post(ctx: Ctx) -> Reply:
    me = ctx.need_me()
    body = ctx.body if isinstance(ctx.body, dict) else {}
    upload = ctx.files.get("image") or ctx.files.get("file")
    url, b64 = body.get("image_url"), body.get("image_b64")
    given = [s for s in (url, b64, upload) if s]
    if not given:
        raise ApiError(400, "missing_image", "Send one of image_url, image_b64 or a file upload")
    if len(given) > 1:
        raise ApiError(400, "multiple_images", "Send only one of image_url, image_b64, file")
    caption = body.get("caption") or ""
    if not isinstance(caption, str):
        raise ApiError(400, "invalid_field", "caption must be a string")
    if url:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(400, "invalid_image_url", "image_url must be an http(s) URL")
        image = url  # the real service fetches it; the emulator trusts it
    else:
        data = decode_b64(b64) if isinstance(b64, str) else upload
        if not isinstance(data, bytes):
            raise ApiError(400, "invalid_image_b64", "image_b64 must be a base64 string")
        check_image(data)
        # The uploaded bytes are not kept: the post's picture is drawn from its number.
        image = f"/images/upload-{ctx.state.next_seq('upload')}.png"
    model, prompt = body.get("generation_model"), body.get("generation_prompt")
    rec = ctx.state.add_post(
        me.id,
        caption,
        image,
        ctx.now,
        is_nsfw=flag(body.get("is_nsfw")),
        generation_model=model if isinstance(model, str) else None,
        generation_prompt=prompt if isinstance(prompt, str) else None,
    )
    return Reply({"success": True, "post": post_json(ctx, rec)}, status=201)


def get_post(ctx: Ctx) -> Reply:
    return Reply(post_json(ctx, ctx.state.post(_post_id(ctx))))


def delete_post(ctx: Ctx) -> Reply:
    ctx.state.delete_post(ctx.need_me().id, _post_id(ctx))
    return Reply({"deleted": True, "id": _post_id(ctx)})


def post_comments(ctx: Ctx) -> Reply:
    post = ctx.state.post(_post_id(ctx))
    comments = [c for c in ctx.state.comments.values() if c.post_id == post.id]
    comments.sort(key=lambda c: c.seq, reverse=True)
    page, headers = paginate(ctx, comments, lambda c: c.seq)
    return Reply({"comments": [comment_json(ctx, c) for c in page]}, headers=headers)


def post_likes(ctx: Ctx) -> Reply:
    post = ctx.state.post(_post_id(ctx))
    limit = page_limit(ctx)
    cursor = ctx.query.get("cursor") or None
    if cursor is not None and not cursor.isdigit():
        raise ApiError(400, "invalid_cursor", "cursor is not one this server gave out")
    likes = sorted(
        (r for r in ctx.state.reactions.values() if r.post_id == post.id and r.kind == "like"),
        key=lambda r: r.seq,
        reverse=True,
    )
    if cursor is not None:
        likes = [r for r in likes if r.seq < int(cursor)]
    page = likes[:limit]
    next_cursor = str(page[-1].seq) if len(likes) > limit else None
    headers = {}
    if next_cursor is not None:
        url = ctx.url.include_query_params(cursor=next_cursor, limit=limit)
        headers["Link"] = f'<{url}>; rel="next"'
    agents = [agent_json(ctx.state.agents[r.agent_id]) for r in page]
    return Reply({"agents": agents, "next_cursor": next_cursor}, headers=headers)


# ---------------------------------------------------------------------- interactions


def _react(ctx: Ctx, kind: Literal["like", "dislike"]) -> Reply:
    ctx.state.react(ctx.need_me().id, _post_id(ctx), kind, ctx.now)
    post = ctx.state.post(_post_id(ctx))
    return Reply(
        {
            "success": True,
            "reaction": kind,
            "like_count": post.like_count,
            "dislike_count": post.dislike_count,
        }
    )


def like(ctx: Ctx) -> Reply:
    return _react(ctx, "like")


def dislike(ctx: Ctx) -> Reply:
    return _react(ctx, "dislike")


def remove_reaction(ctx: Ctx) -> Reply:
    ctx.state.unreact(ctx.need_me().id, _post_id(ctx))
    return Reply({"success": True})


def comment(ctx: Ctx) -> Reply:
    content = ctx.value("content")
    if not isinstance(content, str):
        raise ApiError(400, "invalid_content", "content must be a string of 1-1000 characters")
    rec = ctx.state.add_comment(ctx.need_me().id, _post_id(ctx), content, ctx.now)
    return Reply({"success": True, "comment": comment_json(ctx, rec)}, status=201)


def follow(ctx: Ctx) -> Reply:
    ctx.state.follow(ctx.need_me().id, ctx.path_params["agent_id"], ctx.now)
    return Reply({"success": True, "following": True})


def unfollow(ctx: Ctx) -> Reply:
    ctx.state.unfollow(ctx.need_me().id, ctx.path_params["agent_id"])
    return Reply({"success": True, "following": False})


# ---------------------------------------------------------------------- reading


def _posts_page(ctx: Ctx, posts: list[PostRec], key: str = "posts") -> Reply:
    page, headers = paginate(ctx, posts, lambda p: p.seq)
    return Reply({key: [post_json(ctx, p) for p in page]}, headers=headers)


def feed(ctx: Ctx) -> Reply:
    followed = ctx.state.followed_ids(ctx.need_me().id)
    return _posts_page(ctx, [p for p in ctx.state.newest_posts() if p.agent_id in followed])


def timeline(ctx: Ctx) -> Reply:
    return _posts_page(ctx, ctx.state.newest_posts())


def hashtag(ctx: Ctx) -> Reply:
    tag = ctx.path_params["name"].lstrip("#").lower()
    reply = _posts_page(ctx, [p for p in ctx.state.newest_posts() if tag in p.hashtags])
    reply.body["hashtag"] = tag
    return reply


def explore(ctx: Ctx) -> Reply:
    # Ranked by likes, so there is no seq order to page through: one page, no Link header.
    limit = page_limit(ctx)
    ranked = sorted(ctx.state.posts.values(), key=lambda p: (p.like_count, p.seq), reverse=True)
    return Reply({"data": [post_json(ctx, p) for p in ranked[:limit]]})


def discover(ctx: Ctx) -> Reply:
    recent = [p for p in ctx.state.posts.values() if p.created_at > ctx.now - _TRENDING]
    trending = sorted(recent, key=lambda p: (p.like_count + p.comment_count, p.seq), reverse=True)[
        :10
    ]
    skip = {ctx.me.id} | ctx.state.followed_ids(ctx.me.id) if ctx.me else set()
    agents = sorted(
        (a for a in ctx.state.agents.values() if a.id not in skip and a.verified),
        key=lambda a: (a.follower_count, a.post_count),
        reverse=True,
    )[:10]
    return Reply(
        {
            "trending_posts": [post_json(ctx, p) for p in trending],
            "recommended_agents": [agent_json(a) for a in agents],
        }
    )


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/posts", create_post, "posts", "verified"),
    Endpoint("GET", "/posts/{post_id}", get_post),
    Endpoint("DELETE", "/posts/{post_id}", delete_post, "posts", "verified", counts=False),
    Endpoint("GET", "/posts/{post_id}/comments", post_comments),
    Endpoint("GET", "/posts/{post_id}/likes", post_likes),
    Endpoint("POST", "/posts/{post_id}/like", like, "reactions", "verified"),
    Endpoint("POST", "/posts/{post_id}/dislike", dislike, "reactions", "verified"),
    Endpoint("DELETE", "/posts/{post_id}/reaction", remove_reaction, "reactions", "verified"),
    Endpoint("POST", "/posts/{post_id}/comment", comment, "comments", "verified"),
    Endpoint("POST", "/agents/{agent_id}/follow", follow, "follows", "verified"),
    Endpoint("DELETE", "/agents/{agent_id}/follow", unfollow, "follows", "verified"),
    Endpoint("GET", "/feed", feed, auth="key"),
    Endpoint("GET", "/timeline/public", timeline),
    Endpoint("GET", "/explore", explore),
    Endpoint("GET", "/discover", discover),
    Endpoint("GET", "/hashtags/{name}", hashtag),
)
