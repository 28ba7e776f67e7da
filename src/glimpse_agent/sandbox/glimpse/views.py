"""How the emulated Glimpse reads requests and writes answers: the request context, JSON
shapes of agents/posts/comments, ``seq`` pagination with a ``Link`` header, and the image
checks of ``POST /posts`` (JPEG/PNG/WebP/GIF/AVIF by magic bytes, at most 10 MB).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from starlette.datastructures import URL

from glimpse_agent.sandbox.glimpse.limits import Limiter, iso
from glimpse_agent.sandbox.glimpse.state import (
    AgentRec,
    ApiError,
    CommentRec,
    GlimpseState,
    PostRec,
)
from glimpse_agent.sandbox.multipart import parse_multipart

T = TypeVar("T")
MAX_IMAGE_BYTES = 10 * 1024 * 1024
DEFAULT_LIMIT, MAX_LIMIT = 20, 40


@dataclass
class Reply:
    """A handler's answer: JSON ``body``, ``status``, extra headers."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Auth = Literal["none", "key", "verified"]


@dataclass(frozen=True)
class Endpoint:
    """One API route: who may call it (``auth``) and which rate-limit bucket it spends."""

    method: str
    path: str
    handler: Callable[[Ctx], Reply]
    bucket: str = "read"
    auth: Auth = "none"
    #: Whether a success spends from ``bucket`` (deleting a post only reports the bucket).
    counts: bool = True


@dataclass
class Ctx:
    """One request, as a handler sees it (built and used under the world's lock)."""

    state: GlimpseState
    limiter: Limiter
    now: datetime
    method: str
    url: URL
    path_params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    files: dict[str, bytes]
    me: AgentRec | None
    api_base: str  # e.g. http://127.0.0.1:5555/api/v1
    image_base: str

    def need_me(self) -> AgentRec:
        if self.me is None:  # the route table asks for a key; this is a second net
            raise ApiError(401, "missing_api_key", "Authorization: Bearer glm_... is required")
        return self.me

    def value(self, name: str) -> Any:
        return self.body.get(name) if isinstance(self.body, dict) else None

    def text(self, name: str, *, required: bool = False, max_len: int = 10_000) -> str | None:
        value = self.value(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise ApiError(400, "missing_field", f"{name} is required")
            return None
        if not isinstance(value, str):
            raise ApiError(400, "invalid_field", f"{name} must be a string")
        if len(value) > max_len:
            raise ApiError(400, "invalid_field", f"{name} is longer than {max_len} characters")
        return value


# ---------------------------------------------------------------------- request bodies


def parse_body(raw: bytes, content_type: str) -> tuple[Any, dict[str, bytes]]:
    """``(json_or_form_fields, files)``."""
    if not raw.strip():
        return None, {}
    if content_type.startswith("multipart/form-data"):
        return parse_multipart(content_type, raw)
    try:
        return json.loads(raw), {}
    except ValueError:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON") from None


def flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1", "yes"))


def image_format(data: bytes) -> str | None:
    """The format the magic bytes announce, if Glimpse accepts it."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and (b"avif" in data[8:64] or b"avis" in data[8:64]):
        return "avif"
    return None


def check_image(data: bytes) -> str:
    if len(data) > MAX_IMAGE_BYTES:
        raise ApiError(413, "image_too_large", "Images may be at most 10 MB")
    kind = image_format(data)
    if kind is None:
        raise ApiError(
            400, "unsupported_image_format", "Accepted image formats: JPEG, PNG, WebP, GIF, AVIF"
        )
    return kind


def decode_b64(value: str) -> bytes:
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid_image_b64", "image_b64 is not valid base64") from None


# ---------------------------------------------------------------------- JSON shapes


def agent_json(rec: AgentRec) -> dict[str, Any]:
    return {
        "id": rec.id,
        "name": rec.name,
        "display_name": rec.display_name,
        "bio": rec.bio,
        "avatar_url": rec.avatar_url,
        "follower_count": rec.follower_count,
        "following_count": rec.following_count,
        "post_count": rec.post_count,
        "is_verified": rec.verified,
        "created_at": iso(rec.created_at),
        "last_active_at": iso(rec.last_active_at) if rec.last_active_at else None,
    }


def absolute(image: str, base: str) -> str:
    return image if image.startswith(("http://", "https://")) else base + image


def post_json(ctx: Ctx, rec: PostRec) -> dict[str, Any]:
    author = ctx.state.agents.get(rec.agent_id)
    image = absolute(rec.image, ctx.image_base)
    return {
        "id": rec.id,
        "seq": rec.seq,
        "agent_id": rec.agent_id,
        "agent_name": author.name if author else None,
        "agent": {
            "id": rec.agent_id,
            "name": author.name if author else None,
            "display_name": author.display_name if author else None,
        },
        "caption": rec.caption,
        "image_url": image,
        "thumbnail_url": image + "?size=150" if image.startswith(ctx.image_base) else image,
        "created_at": iso(rec.created_at),
        "like_count": rec.like_count,
        "dislike_count": rec.dislike_count,
        "comment_count": rec.comment_count,
        "hashtags": list(rec.hashtags),
        "generation_model": rec.generation_model,
        "generation_prompt": rec.generation_prompt,
        "is_nsfw": rec.is_nsfw,
    }


def comment_json(ctx: Ctx, rec: CommentRec) -> dict[str, Any]:
    author = ctx.state.agents.get(rec.agent_id)
    return {
        "id": rec.id,
        "seq": rec.seq,
        "post_id": rec.post_id,
        "agent_id": rec.agent_id,
        "agent_name": author.name if author else None,
        "content": rec.content,
        "created_at": iso(rec.created_at),
    }


# ---------------------------------------------------------------------- pagination


def _int_query(ctx: Ctx, name: str) -> int | None:
    raw = ctx.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer") from None


def page_limit(ctx: Ctx) -> int:
    limit = _int_query(ctx, "limit")
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_limit", f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def paginate(
    ctx: Ctx, newest_first: Sequence[T], seq: Callable[[T], int]
) -> tuple[list[T], dict[str, str]]:
    """The page of ``newest_first`` that ``max_id``/``since_id``/``limit`` ask for, and its
    ``Link`` header: ``next`` (older) when more remain, ``prev`` (newer) for a non-empty page."""
    limit = page_limit(ctx)
    max_id, since_id = _int_query(ctx, "max_id"), _int_query(ctx, "since_id")
    chosen = [
        i
        for i in newest_first
        if (max_id is None or seq(i) < max_id) and (since_id is None or seq(i) > since_id)
    ]
    page = chosen[:limit]
    links = []
    if len(chosen) > limit:
        url = ctx.url.remove_query_params("since_id").include_query_params(
            max_id=seq(page[-1]), limit=limit
        )
        links.append(f'<{url}>; rel="next"')
    if page:
        url = ctx.url.remove_query_params("max_id").include_query_params(
            since_id=seq(page[0]), limit=limit
        )
        links.append(f'<{url}>; rel="prev"')
    return page, ({"Link": ", ".join(links)} if links else {})
