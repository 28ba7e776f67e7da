"""prepare_for_post: formats by magic bytes, the 10 MB limit, re-encoding, URLs; and the
offline generator."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from glimpse_agent.config import LocalImagesSection
from glimpse_agent.errors import BadResponse
from glimpse_agent.imaging import GeneratedImage, ImageRequest, PostImage, prepare_for_post
from glimpse_agent.imaging.backends.local import LocalBackend, paint
from glimpse_agent.imaging.prepare import MAX_POST_BYTES, image_size, sniff_mime


def encoded(fmt: str, size: tuple[int, int] = (32, 24), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (200, 120, 40, 128)[: len(mode)]).save(buf, format=fmt)
    return buf.getvalue()


def generated(data: bytes, mime: str = "image/png") -> GeneratedImage:
    return GeneratedImage(backend="test", model="m", prompt="p", data=data, mime_type=mime)


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("AVIF", "image/avif"),
    ],
)
def test_each_accepted_format_passes_as_bytes(fmt: str, mime: str) -> None:
    """JPEG, PNG, WebP, GIF and AVIF bytes pass unchanged, typed by their magic bytes."""
    data = encoded(fmt)
    ready = prepare_for_post(generated(data, mime="application/octet-stream"))
    assert ready == PostImage(data=data, mime_type=mime)
    assert ready.image_url is None and ready.b64()


def test_a_url_image_is_posted_by_url() -> None:
    """An image that is a URL is handed over as image_url, untouched."""
    image = GeneratedImage(backend="glif", model="m", prompt="p", url="https://res.example/run.png")
    assert prepare_for_post(image) == PostImage(image_url="https://res.example/run.png")


@pytest.mark.parametrize(
    "data",
    [
        b"<html><body>Service Unavailable</body></html>",
        b'{"error": "nope"}',
        b"BM\x00\x00",  # BMP: an image, but not one Glimpse accepts
        b"",
    ],
)
def test_non_image_bytes_are_rejected(data: bytes) -> None:
    """Bytes that are not JPEG/PNG/WebP/GIF/AVIF raise BadResponse naming the backend."""
    with pytest.raises(BadResponse, match="not JPEG") as info:
        prepare_for_post(generated(data))
    assert info.value.service == "test"


def test_a_png_over_10_mb_is_reencoded_under_it() -> None:
    """A 10.8 MB PNG comes back smaller than 10 MB, as an accepted format, same size."""
    img = Image.linear_gradient("L").resize((1900, 1900)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=0)
    assert buf.tell() > MAX_POST_BYTES
    ready = prepare_for_post(generated(buf.getvalue()))
    assert ready.data is not None and len(ready.data) <= MAX_POST_BYTES
    assert ready.mime_type == sniff_mime(ready.data) == "image/webp"
    assert image_size(ready.data) == (1900, 1900)


def test_incompressible_images_are_scaled_down_until_they_fit() -> None:
    """Noise that no quality setting fits is shrunk in size until it does."""
    noise = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    ready = prepare_for_post(generated(buf.getvalue()), max_bytes=20_000)
    assert ready.data is not None and len(ready.data) <= 20_000
    size = image_size(ready.data)
    assert size is not None and size[0] < 300


def test_transparency_survives_reencoding() -> None:
    """An RGBA image is re-encoded as WebP with its alpha, never as JPEG."""
    data = encoded("PNG", (400, 400), "RGBA")
    ready = prepare_for_post(generated(data), max_bytes=len(data) - 1)
    assert ready.mime_type == "image/webp" and ready.data is not None
    assert Image.open(io.BytesIO(ready.data)).mode == "RGBA"


def test_an_oversized_truncated_image_is_rejected() -> None:
    """Bytes with a PNG signature that cannot be decoded cannot be shrunk: BadResponse."""
    with pytest.raises(BadResponse, match="decode"):
        prepare_for_post(generated(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100), max_bytes=50)


def test_generated_image_carries_data_or_url_and_hides_bytes_in_repr() -> None:
    """GeneratedImage refuses neither/both; its repr names the size, not the bytes."""
    with pytest.raises(ValueError, match="either"):
        GeneratedImage(backend="b", model="m", prompt="p")
    with pytest.raises(ValueError, match="either"):
        GeneratedImage(
            backend="b", model="m", prompt="p", data=b"x", mime_type="image/png", url="https://x"
        )
    assert "3 bytes image/png" in repr(generated(b"abc"))


def test_empty_prompt_is_refused() -> None:
    """An ImageRequest needs a prompt with some text in it."""
    with pytest.raises(ValueError, match="empty"):
        ImageRequest(prompt="   ")


def test_paint_is_deterministic_and_prompt_dependent() -> None:
    """Same prompt and seed, same PNG bytes; another prompt or seed, another picture."""
    a = paint("a lighthouse", 96, 64)
    assert a == paint("a lighthouse", 96, 64)
    assert a != paint("a lighthouse", 96, 64, seed=2) and a != paint("a harbour", 96, 64)
    assert sniff_mime(a) == "image/png" and image_size(a) == (96, 64)


async def test_local_backend_uses_section_size_and_costs_nothing() -> None:
    """The offline backend draws at [images.local] size unless the request says otherwise."""
    backend = LocalBackend(LocalImagesSection(width=128, height=96))
    image = await backend.generate(ImageRequest(prompt="tidepools"))
    assert (image.width, image.height) == (128, 96) and image.cost_usd == 0.0
    assert image.data is not None and image_size(image.data) == (128, 96)
    await backend.check()
    wide = await backend.generate(ImageRequest(prompt="tidepools", width=200, height=100))
    assert (wide.width, wide.height) == (200, 100)
