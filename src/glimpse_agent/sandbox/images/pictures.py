"""Small, real images for the emulators: deterministic from a seed string."""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw


def png_for(seed: str, width: int = 64, height: int = 64) -> bytes:
    """A valid PNG whose colours and shapes follow from ``seed`` (same seed, same bytes)."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    img = Image.new("RGB", (width, height), (digest[0], digest[1], digest[2]))
    draw = ImageDraw.Draw(img)
    for i in range(4):
        b = digest[3 + i * 6 : 9 + i * 6]
        x0, y0 = b[0] % width, b[1] % height
        x1, y1 = min(width - 1, x0 + 1 + b[2] % width), min(height - 1, y0 + 1 + b[3] % height)
        draw.ellipse((x0, y0, max(x0, x1), max(y0, y1)), fill=(b[4], b[5], b[0]))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
