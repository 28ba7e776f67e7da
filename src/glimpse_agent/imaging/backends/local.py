"""The offline generator: no key, no network, no cost. It paints an abstract picture whose
palette and shapes follow from a hash of the prompt (same prompt and seed, same PNG bytes),
so the sandbox and a persona without any image service still post something pleasant."""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import io
import time

from PIL import Image, ImageDraw, ImageFilter

from glimpse_agent.config import LocalImagesSection
from glimpse_agent.imaging.base import GeneratedImage, ImageRequest

MODEL = "glimpse-agent/abstract-v1"


class _Bytes:
    """A deterministic stream of numbers drawn from a hash of the prompt."""

    def __init__(self, seed: str) -> None:
        self._seed = seed.encode("utf-8")
        self._block = b""
        self._counter = 0

    def byte(self) -> int:
        if not self._block:
            self._block = hashlib.sha256(self._seed + self._counter.to_bytes(4, "big")).digest()
            self._counter += 1
        value, self._block = self._block[0], self._block[1:]
        return value

    def unit(self) -> float:
        """A number in [0, 1)."""
        return (self.byte() * 256 + self.byte()) / 65536


def _colour(hue: float, sat: float, val: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return round(r * 255), round(g * 255), round(b * 255)


def paint(prompt: str, width: int, height: int, seed: int | None = None) -> bytes:
    """PNG bytes of an abstract image for ``prompt`` (deterministic)."""
    rnd = _Bytes(f"{prompt}\x00{seed}")
    base_hue = rnd.unit()
    # Analogous hues plus one complementary accent look deliberate rather than random.
    dark = _colour(base_hue, 0.55 + 0.3 * rnd.unit(), 0.25 + 0.2 * rnd.unit())
    light = _colour(base_hue + 0.12, 0.35 + 0.3 * rnd.unit(), 0.8 + 0.2 * rnd.unit())
    shapes = [
        _colour(base_hue + d, 0.5 + 0.4 * rnd.unit(), 0.6 + 0.4 * rnd.unit())
        for d in (-0.1, 0.06, 0.2, 0.5)
    ]

    # Rotate a 256-px ramp and keep its centre, which no rotation leaves uncovered.
    gradient = Image.linear_gradient("L").rotate(rnd.unit() * 360, Image.Resampling.BICUBIC)
    gradient = gradient.crop((38, 38, 218, 218)).resize((width, height), Image.Resampling.BICUBIC)
    canvas = Image.composite(
        Image.new("RGB", (width, height), light), Image.new("RGB", (width, height), dark), gradient
    )

    scale = min(width, height)
    soft = ImageFilter.GaussianBlur(radius=max(1.0, scale / 200))
    for i in range(5 + rnd.byte() % 5):
        colour = shapes[3] if i == 0 else shapes[i % 3]
        # Each shape is a solid layer seen through a blurred mask: soft edges, no dark halo.
        mask = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(mask)
        alpha = 70 + rnd.byte() % 120
        cx, cy = rnd.unit() * width, rnd.unit() * height
        r = scale * ((0.03 if i == 0 else 0.08) + 0.25 * rnd.unit())
        kind = rnd.byte() % 4
        if kind < 2:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=alpha)
        elif kind == 2:
            draw.regular_polygon(
                (cx, cy, r), 3 + rnd.byte() % 4, rotation=rnd.unit() * 360, fill=alpha
            )
        else:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=alpha, width=max(2, int(r / 6)))
        canvas.paste(Image.new("RGB", (width, height), colour), (0, 0), mask.filter(soft))

    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


class LocalBackend:
    """``[images.local]``: the always-available last resort."""

    name = "local"

    def __init__(self, section: LocalImagesSection) -> None:
        self.section = section

    def estimated_cost(self) -> float:
        return 0.0

    async def check(self) -> None:
        return None

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        width = request.width or self.section.width
        height = request.height or self.section.height
        started = time.perf_counter()
        # Painting is CPU work: keep the event loop free for the heartbeat.
        data = await asyncio.to_thread(paint, request.prompt, width, height, request.seed)
        elapsed = time.perf_counter() - started
        return GeneratedImage(
            backend=self.name,
            model=MODEL,
            prompt=request.prompt,
            data=data,
            mime_type="image/png",
            width=width,
            height=height,
            cost_usd=0.0,
            timings={"total": elapsed},
        )
