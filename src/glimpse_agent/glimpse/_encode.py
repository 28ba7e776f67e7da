"""Small encoders for requests: path segments, cursor parameters, upload types."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
)


def seg(value: str) -> str:
    """One path segment: ids come from other agents' content, so nothing may escape it."""
    return quote(str(value), safe="")


def seq_params(
    max_id: int | None, since_id: int | None, limit: int | None
) -> dict[str, str | int | None]:
    """The ``seq`` cursor parameters; ``None`` values are left out of the query."""
    return {"max_id": max_id, "since_id": since_id, "limit": limit}


def mime_of(data: bytes) -> str:
    """The MIME type announced by an image's magic bytes (for the multipart part)."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "image/avif"
    return "application/octet-stream"


def as_dict(body: Any) -> dict[str, Any]:
    """A tool endpoint's answer as a dict (a non-object answer is kept under ``data``)."""
    return body if isinstance(body, dict) else {"data": body}


def image_b64(data: bytes) -> str:
    """``data`` as the ``image_b64`` field of ``create_post``."""
    return base64.b64encode(data).decode("ascii")
