"""Lists from Glimpse: envelopes, and the cursors to the next and previous pages.

Glimpse pages posts by their integer ``seq``: ``max_id`` (older than) and ``since_id`` (newer
than), and says where the neighbours are in a ``Link`` header (``rel="next"``/``rel="prev"``).
When a server sends no ``Link`` header, the cursors are derived from the items' ``seq``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel

from glimpse_agent.glimpse.models import sort_items

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

DEFAULT_LIMIT = 20
#: The most items of one page that are read: we ask for 20-40, Glimpse gives at most 100; a
#: server sending a hundred thousand must not have each one made into a model.
MAX_PAGE_ITEMS = 200
#: Keys a list may be wrapped under; the first one holding a list wins.
LIST_KEYS = (
    "posts",
    "data",
    "items",
    "comments",
    "agents",
    "results",
    "followers",
    "following",
    "likes",
    "suggestions",
    "captions",
)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, newest first, with the cursors to move on.

    ``next_max_id`` asks for older items (``max_id=``), ``prev_since_id`` for newer ones
    (``since_id=``); ``next_cursor`` is for cursor-paged lists (post likes). ``links`` maps each
    ``rel`` of the ``Link`` header to its URL (only its cursor is ever read: a link to another
    host is never followed). A ``None`` cursor means: nothing more that way. ``skipped`` items
    could not be read (``problem`` says why the first could not).
    """

    items: list[T]
    next_max_id: int | None = None
    prev_since_id: int | None = None
    next_cursor: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    problem: str = ""

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def list_of(body: Any, keys: tuple[str, ...] = LIST_KEYS) -> list[Any]:
    """The list in ``body``: a bare list, or the first of ``keys`` holding one (also one level
    down, as in ``{"data": {"posts": [...]}}``). Raises ``ValueError`` if there is none."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in keys:
            value = body.get(key)
            if isinstance(value, list):
                return value
        for key in ("data", "result"):
            inner = body.get(key)
            if isinstance(inner, dict):
                return list_of(inner, keys)
    raise ValueError("the response holds no list")


def _param(url: str, name: str) -> str | None:
    """``name``'s value in ``url``'s query; ``None`` when absent or the URL is unreadable (a
    ``Link`` header is the server's text: ``<http://[::1>`` must not cost the page)."""
    try:
        values = parse_qs(urlsplit(url).query).get(name)
    except ValueError:
        return None
    return values[0] if values else None


def _int_param(url: str, name: str) -> int | None:
    value = _param(url, name)
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _str_param(url: str, name: str) -> str | None:
    return _param(url, name)


def build_page(
    model: type[M], body: Any, links: Mapping[str | None, Mapping[str, str]], *, limit: int | None
) -> Page[M]:
    """A ``Page`` from a decoded body and ``httpx.Response.links``. Raises ``ValueError`` when
    the body holds no list or none of its items is a valid ``model``. Items past
    ``MAX_PAGE_ITEMS`` are not read."""
    listed = list_of(body)
    read = sort_items(model, listed[:MAX_PAGE_ITEMS])
    items, unread = read.items, max(0, len(listed) - MAX_PAGE_ITEMS)
    urls = {rel: link["url"] for rel, link in links.items() if rel and "url" in link}
    next_url, prev_url = urls.get("next"), urls.get("prev") or urls.get("previous")
    next_cursor = _str_param(next_url, "cursor") if next_url else None
    if next_cursor is None and isinstance(body, dict):
        raw = body.get("next_cursor") or body.get("cursor")
        next_cursor = str(raw) if raw not in (None, "") else None
    if urls:
        # The server told us where the neighbours are; an absent rel means there is none.
        next_max_id = _int_param(next_url, "max_id") if next_url else None
        prev_since_id = _int_param(prev_url, "since_id") if prev_url else None
    else:
        seqs = [s for s in (getattr(i, "seq", None) for i in items) if isinstance(s, int) and s > 0]
        full = len(items) >= (limit or DEFAULT_LIMIT)
        next_max_id = min(seqs) if seqs and full else None
        prev_since_id = max(seqs) if seqs else None
    return Page(
        items=items,
        next_max_id=next_max_id,
        prev_since_id=prev_since_id,
        next_cursor=next_cursor,
        links=urls,
        skipped=read.skipped + unread,
        problem=read.problem or ("more items than a page holds" if unread else ""),
    )
