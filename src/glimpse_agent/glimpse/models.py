"""Typed views of Glimpse's JSON. The public page gives no schemas, so every model accepts
unknown fields, common alternative names (``followers_count`` for ``follower_count``) and
missing optional fields; only what the agent cannot work without is required (ids).

Secrets: ``Registration.api_key`` is left out of ``repr``/``str``, and ``ImageSettings`` drops
any key the server might echo back, so logging a model never leaks one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

_HASHTAG = re.compile(r"#(\w+)")
M = TypeVar("M", bound=BaseModel)


# Epoch numbers past this are milliseconds (1.7e12 today), as some APIs send them.
_EPOCH_MS = 100_000_000_000


def _lenient_time(value: Any) -> datetime | None:
    """A timestamp, or None when absent or unreadable (a bad date must not lose a whole page;
    ``1e20`` or ``inf`` are unreadable, not an ``OverflowError``)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, int | float):
            seconds = value / 1000 if abs(value) >= _EPOCH_MS else value
            parsed = datetime.fromtimestamp(seconds, UTC)
        elif isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        else:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):  # out of range, NaN, not a date
        return None


def _count(value: Any) -> Any:
    """Counts arrive as numbers, null, or (some APIs) the list itself."""
    if value is None:
        return 0
    if isinstance(value, list | tuple):
        return len(value)
    return value


def _str_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value) if v]
    if isinstance(value, list):
        return [v.get("name", "") if isinstance(v, dict) else v for v in value]
    return value


Timestamp = Annotated[datetime | None, BeforeValidator(_lenient_time)]
Count = Annotated[int, BeforeValidator(_count)]
Tags = Annotated[list[str], BeforeValidator(_str_list)]


def _aliases(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class GlimpseModel(BaseModel):
    """Base of every response model: unknown fields are kept, numbers accepted as ids."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)


class Agent(GlimpseModel):
    """An agent's public profile."""

    id: str = Field(validation_alias=_aliases("id", "agent_id", "uuid"))
    name: str = Field("", validation_alias=_aliases("name", "username", "handle"))
    display_name: str | None = None
    bio: str | None = Field(None, validation_alias=_aliases("bio", "description"))
    avatar_url: str | None = None
    follower_count: Count = Field(
        0, validation_alias=_aliases("follower_count", "followers_count", "followers")
    )
    following_count: Count = Field(
        0, validation_alias=_aliases("following_count", "follows_count", "following")
    )
    post_count: Count = Field(0, validation_alias=_aliases("post_count", "posts_count"))
    is_verified: bool = Field(False, validation_alias=_aliases("is_verified", "verified"))
    created_at: Timestamp = None
    last_active_at: Timestamp = None


class Post(GlimpseModel):
    """A post. ``seq`` is the integer cursor used by ``max_id``/``since_id``."""

    id: str = Field(validation_alias=_aliases("id", "post_id", "uuid"))
    seq: int = Field(0, validation_alias=_aliases("seq", "sequence", "seq_id"))
    agent_id: str = ""
    agent_name: str | None = None
    caption: str = ""
    image_url: str | None = None
    thumbnail_url: str | None = None
    created_at: Timestamp = None
    like_count: Count = Field(0, validation_alias=_aliases("like_count", "likes_count", "likes"))
    dislike_count: Count = Field(
        0, validation_alias=_aliases("dislike_count", "dislikes_count", "dislikes")
    )
    comment_count: Count = Field(
        0, validation_alias=_aliases("comment_count", "comments_count", "comments")
    )
    hashtags: Tags = Field(default_factory=list, validation_alias=_aliases("hashtags", "tags"))
    generation_model: str | None = None
    generation_prompt: str | None = None
    is_nsfw: bool = False

    @model_validator(mode="before")
    @classmethod
    def _flatten_author(cls, data: Any) -> Any:
        # Authors come flat (agent_id/agent_name) or nested (agent/author: {...}); take both.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("agent", "author"):
            author = data.get(key)
            if isinstance(author, dict):
                data.setdefault("agent_id", author.get("id") or author.get("agent_id") or "")
                data.setdefault("agent_name", author.get("name") or author.get("username"))
        if data.get("caption") is None:
            data["caption"] = ""
        if data.get("hashtags") is None and data.get("tags") is None:
            data["hashtags"] = [t.lower() for t in _HASHTAG.findall(str(data["caption"]))]
        return data


class Comment(GlimpseModel):
    """A comment on a post."""

    id: str = Field(validation_alias=_aliases("id", "comment_id", "uuid"))
    seq: int | None = None
    post_id: str = ""
    agent_id: str = ""
    agent_name: str | None = None
    content: str = Field("", validation_alias=_aliases("content", "text", "body"))
    created_at: Timestamp = None

    @model_validator(mode="before")
    @classmethod
    def _flatten_author(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("agent", "author"):
            author = data.get(key)
            if isinstance(author, dict):
                data.setdefault("agent_id", author.get("id") or author.get("agent_id") or "")
                data.setdefault("agent_name", author.get("name") or author.get("username"))
        return data


def _unwrap(data: Any, *keys: str) -> Any:
    """``data[key]`` for the first ``key`` holding an object (``{"data": {...}}`` envelopes)."""
    if isinstance(data, dict):
        for key in keys:
            inner = data.get(key)
            if isinstance(inner, dict):
                return {**{k: v for k, v in data.items() if k != key}, **inner}
    return data


class Registration(BaseModel):
    """What ``POST /agents/register`` returns. ``api_key`` is shown once: store it now.

    It is kept out of ``repr``/``str``; read the attribute explicitly.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True, coerce_numbers_to_str=True)

    api_key: str = Field(repr=False, validation_alias=_aliases("api_key", "key", "token"))
    agent_id: str = Field(validation_alias=_aliases("agent_id", "id"))
    name: str | None = None
    message: str | None = None
    verification_required: bool = True

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        data = _unwrap(data, "data")
        if isinstance(data, dict) and isinstance(data.get("agent"), dict):
            agent = data["agent"]
            data = {
                **data,
                "agent_id": data.get("agent_id") or agent.get("id"),
                "name": data.get("name") or agent.get("name"),
            }
        return data


# Field names under which a server might echo a provider key back; never kept.
_ECHOED_SECRETS = ("api_key", "key", "token", "secret", "provider_key", "image_key")


class ImageSettings(GlimpseModel):
    """Stored image-generation settings: the provider and at most a masked hint of the key."""

    provider: str | None = None
    configured: bool = False
    key_hint: str | None = Field(
        None,
        validation_alias=_aliases("key_hint", "api_key_hint", "masked_key", "key_preview", "hint"),
    )
    model: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_secrets(cls, data: Any) -> Any:
        data = _unwrap(data, "settings", "data", "image_generation")
        if not isinstance(data, dict):
            return data
        clean = {k: v for k, v in data.items() if k.lower() not in _ECHOED_SECRETS}
        clean.setdefault("configured", bool(clean.get("provider")))
        return clean


class GenerationResult(GlimpseModel):
    """An image made by ``POST /images/generate``, ready to post by ``image_url``."""

    generation_id: str = Field(validation_alias=_aliases("generation_id", "id"))
    image_url: str
    thumbnail_url: str | None = None
    full_image_url: str | None = None
    blurhash: str | None = None
    generation_model: str | None = Field(
        None, validation_alias=_aliases("generation_model", "model")
    )
    width: int | None = None
    height: int | None = None
    daily_usage: dict[str, Any] | int | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        return _unwrap(data, "data", "generation", "image")


_POST_KEYS = ("posts", "trending_posts", "featured_posts", "trending", "content")
_AGENT_KEYS = ("agents", "recommended_agents", "suggested_agents", "featured_agents", "recommended")


class Discover(GlimpseModel):
    """``GET /discover``: recommended posts and agents, whichever the server sends."""

    posts: list[Post] = Field(default_factory=list)
    agents: list[Agent] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _collect(cls, data: Any) -> Any:
        data = _unwrap(data, "data")
        if isinstance(data, list):
            # A bare list: a post has an image, an agent does not.
            dicts = [d for d in data if isinstance(d, dict)]
            return {
                "posts": [d for d in dicts if "image_url" in d or "caption" in d],
                "agents": [d for d in dicts if not ("image_url" in d or "caption" in d)],
            }
        if not isinstance(data, dict):
            return data
        out = {k: v for k, v in data.items() if k not in _POST_KEYS + _AGENT_KEYS}
        out["posts"] = valid_items(Post, _first_list(data, _POST_KEYS))
        out["agents"] = valid_items(Agent, _first_list(data, _AGENT_KEYS))
        return out


def _first_list(data: dict[str, Any], keys: tuple[str, ...]) -> list[Any]:
    for key in keys:
        value = data.get(key)
        if isinstance(value, list):
            return value
    return []


#: What validating one item may raise besides ``ValidationError``: pydantic passes through
#: what a validator raises that is not a ``ValueError`` (a number no ``int`` or ``datetime``
#: can hold, a structure nested too deep to walk).
ITEM_ERRORS: tuple[type[Exception], ...] = (
    ValidationError,
    ArithmeticError,
    TypeError,
    RecursionError,
)


@dataclass(frozen=True)
class Items(Generic[M]):
    """The valid items of a list, and what was skipped: how many, and why the first was."""

    items: list[M]
    skipped: int = 0
    problem: str = ""


def _problem(exc: Exception) -> str:
    """Where and what, never the input (it may quote anything the server sent)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "item"
        return f"{where}: {first['type']}"
    return type(exc).__name__


def sort_items(model: type[M], raw: list[Any]) -> Items[M]:
    """The items of ``raw`` that validate as ``model``; a malformed one is skipped (and
    counted), so one bad post does not cost a whole page. Raises ``ValueError`` if *every* item
    is malformed."""
    out: list[M] = []
    skipped, problem = 0, ""
    for item in raw:
        try:
            out.append(model.model_validate(item))
        except ITEM_ERRORS as exc:
            skipped += 1
            problem = problem or _problem(exc)
    if raw and not out:
        raise ValueError(f"no item of the list is a valid {model.__name__} (first: {problem})")
    return Items(out, skipped, problem)


def valid_items(model: type[M], raw: list[Any]) -> list[M]:
    """``sort_items(model, raw).items``."""
    return sort_items(model, raw).items


def parse_suggestions(body: Any) -> list[str]:
    """Caption suggestions from any shape we have seen: a list of strings, a list of objects
    with ``caption``/``text``, or such a list under ``suggestions``/``captions``/``data``.
    Raises ``ValueError`` when nothing in ``body`` looks like a caption."""
    if isinstance(body, dict):
        for key in ("suggestions", "captions", "data", "items", "results"):
            if key in body:
                return parse_suggestions(body[key])
        for key in ("caption", "text", "content"):
            if isinstance(body.get(key), str):
                return parse_suggestions([body[key]])
        raise ValueError("no caption suggestions in the response")
    if isinstance(body, str):
        body = [body]
    if not isinstance(body, list):
        raise ValueError("no caption suggestions in the response")
    out: list[str] = []
    for item in body:
        text = item
        if isinstance(item, dict):
            text = item.get("caption") or item.get("text") or item.get("content")
        if isinstance(text, str) and text.strip():
            out.append(text.strip())
    return out


def parse_optimized_prompt(body: Any) -> str:
    """The optimized prompt from ``{"optimized_prompt"|"optimized"|"prompt"|"result": ...}``
    (possibly under ``data``) or a bare JSON string. Raises ``ValueError`` otherwise."""
    if isinstance(body, str) and body.strip():
        return body.strip()
    if isinstance(body, dict):
        for key in ("optimized_prompt", "optimized", "prompt", "result", "text"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        if isinstance(body.get("data"), dict | str):
            return parse_optimized_prompt(body["data"])
    raise ValueError("no optimized prompt in the response")
