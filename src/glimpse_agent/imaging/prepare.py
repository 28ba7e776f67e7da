"""Getting a generated image ready for ``POST /posts``: Glimpse takes JPEG, PNG, WebP, GIF or
AVIF up to 10 MB, by ``image_url`` or as bytes (``image_b64`` / multipart).

``prepare_for_post`` trusts the bytes, not the declared type: the format comes from the magic
numbers, and anything too big is re-encoded smaller. Re-encoding is CPU work (up to about a
second for a huge image): call it through ``asyncio.to_thread`` from async code.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from glimpse_agent.errors import BadResponse
from glimpse_agent.imaging.base import GeneratedImage

# Glimpse says "max 10 MB"; the decimal reading is the smaller one, so it is the safe one.
MAX_POST_BYTES = 10_000_000
ACCEPTED = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/avif")
_AVIF_BRANDS = (b"avif", b"avis")


@dataclass(frozen=True)
class PostImage:
    """What ``create_post`` needs: either ``image_url``, or ``data`` with its ``mime_type``."""

    image_url: str | None = None
    data: bytes | None = None
    mime_type: str | None = None

    def b64(self) -> str:
        """``data`` as base64 for the ``image_b64`` field."""
        if self.data is None:
            raise ValueError("this PostImage is a URL")
        return base64.b64encode(self.data).decode("ascii")

    def __repr__(self) -> str:
        if self.data is not None:
            return f"PostImage({len(self.data)} bytes {self.mime_type})"
        return f"PostImage(image_url={self.image_url!r})"


def sniff_mime(data: bytes) -> str | None:
    """The MIME type the magic bytes announce, if Glimpse accepts it; else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if len(data) >= 16 and data[4:8] == b"ftyp":
        # ISO-BMFF: major brand at 8..12, compatible brands after the minor version.
        box_size = int.from_bytes(data[:4], "big")
        brands = data[8:12] + data[16 : min(box_size, 64)]
        if any(brands[i : i + 4] in _AVIF_BRANDS for i in range(0, len(brands) - 3, 4)):
            return "image/avif"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the image header, without decoding pixels; None if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            return opened.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return None


def prepare_for_post(image: GeneratedImage, *, max_bytes: int = MAX_POST_BYTES) -> PostImage:
    """A ``PostImage`` for ``image``: a URL image is posted by URL; bytes are checked (format
    by magic bytes, size) and re-encoded smaller when over ``max_bytes``.

    Raises ``BadResponse`` (service = the image's backend) for bytes that are not an image
    Glimpse accepts, or that cannot be brought under the limit.
    """
    if image.url is not None:
        return PostImage(image_url=image.url)
    assert image.data is not None  # GeneratedImage guarantees data or url
    data = image.data
    mime = sniff_mime(data)
    if mime is None:
        raise BadResponse(
            f"the image is not JPEG, PNG, WebP, GIF or AVIF (starts with {data[:8]!r})",
            service=image.backend,
        )
    if len(data) <= max_bytes:
        return PostImage(data=data, mime_type=mime)
    smaller, smaller_mime = shrink(data, max_bytes, service=image.backend)
    return PostImage(data=smaller, mime_type=smaller_mime)


def shrink(data: bytes, max_bytes: int, *, service: str = "imaging") -> tuple[bytes, str]:
    """Re-encode ``data`` under ``max_bytes``: WebP (keeps transparency) then JPEG, with
    falling quality, then smaller dimensions. Returns the bytes and their MIME type."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            picture = opened.copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise BadResponse(f"cannot decode the image to shrink it: {exc}", service=service) from exc
    has_alpha = picture.mode in ("RGBA", "LA") or "transparency" in picture.info
    picture = picture.convert("RGBA" if has_alpha else "RGB")
    for _ in range(6):
        for fmt, quality in (("WEBP", 90), ("WEBP", 80), ("WEBP", 70), ("JPEG", 85), ("JPEG", 70)):
            if fmt == "JPEG" and has_alpha:
                continue  # JPEG would paint the transparent parts black
            out = io.BytesIO()
            picture.save(out, format=fmt, quality=quality)
            if out.tell() <= max_bytes:
                return out.getvalue(), f"image/{fmt.lower()}"
        # Still too big at every quality: lose resolution (3/4 each round).
        picture = picture.resize(
            (max(1, picture.width * 3 // 4), max(1, picture.height * 3 // 4)),
            Image.Resampling.LANCZOS,
        )
    raise BadResponse(f"cannot bring the image under {max_bytes} bytes", service=service)
