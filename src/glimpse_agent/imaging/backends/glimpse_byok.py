"""Glimpse's own generator (``POST /images/generate``), paid with the user's provider key
("bring your own key"). Two ways to hand Glimpse the key:

- ``stored``: ``PUT /agents/me/settings/image-generation`` once; again only when the
  provider or key changed. A SHA-256 fingerprint of (provider, key) is kept in the state dir
  (never the key), and the server's settings are read once per process in case someone
  removed the key there.
- ``headers``: ``X-Image-Provider`` / ``X-Image-Key`` ride along with every request.

The result is a URL on Glimpse, ready to post by ``image_url``. Generation counts against
Glimpse's own limits (10/minute, 6/day), so nothing here is ever sent twice: a failure goes
back to the router. That includes an answer that timed out or broke off mid-body
(``Unavailable``, so the router moves on): Glimpse may have made, and counted, that image.
A refusal whose text says the prompt was refused (safety, NSFW, content
policy) is a ``ContentRejected``, so the router does not hand that prompt to another backend;
any other 4xx stays a ``Rejected`` (a configuration failure). We assume a refused prompt
does not count against the day's six (the seed page is silent; the emulator's
``faults.refuse(counted=True)`` plays the other case).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from glimpse_agent.config import GlimpseImagesSection
from glimpse_agent.errors import ContentRejected, Rejected
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.imaging import costs
from glimpse_agent.imaging._http import looks_like_content_refusal
from glimpse_agent.imaging.base import GeneratedImage, ImageRequest
from glimpse_agent.logs import get_logger

FINGERPRINT_FILE = "glimpse_image_key.sha256"


def fingerprint(provider: str, key: str) -> str:
    """What identifies a (provider, key) pair without revealing the key."""
    return hashlib.sha256(f"glimpse-image-key\0{provider}\0{key}".encode()).hexdigest()


class GlimpseImagesBackend:
    """``[images.glimpse]``: Glimpse generates the image with the user's provider key."""

    name = "glimpse"

    def __init__(
        self, section: GlimpseImagesSection, *, client: GlimpseClient, state_dir: Path
    ) -> None:
        self.section = section
        self.client = client
        self.path = state_dir / FINGERPRINT_FILE
        self.log = get_logger("glimpse_agent.imaging.glimpse")
        self._stored_ok = False  # the key is known to be on the server, this process

    def estimated_cost(self) -> float:
        return costs.glimpse_cost(self.section.provider, self.section.cost_usd)

    def _fingerprint(self) -> str:
        return fingerprint(self.section.provider, self.section.api_key.get_secret_value())

    def _read_fingerprint(self) -> str | None:
        try:
            return self.path.read_text(encoding="ascii").strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def _write_fingerprint(self, value: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(value + "\n")
        os.replace(tmp, self.path)

    async def ensure_stored(self) -> bool:
        """Store the key on Glimpse unless it is already there. True if it was (re)sent."""
        if self._stored_ok:
            return False
        wanted = self._fingerprint()
        if self._read_fingerprint() == wanted:
            settings = await self.client.get_image_settings()
            if settings.configured and settings.provider == self.section.provider:
                self._stored_ok = True
                return False
            self.log.info("image.key_missing_on_server", backend=self.name)
        await self.client.put_image_settings(
            self.section.provider, self.section.api_key.get_secret_value()
        )
        self._write_fingerprint(wanted)
        self._stored_ok = True
        self.log.info("image.key_stored", backend=self.name, provider=self.section.provider)
        return True

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        started = time.perf_counter()
        if self.section.mode == "stored":
            await self.ensure_stored()
        try:
            if self.section.mode == "stored":
                result = await self.client.generate_image(request.prompt, style=self.section.style)
            else:
                result = await self.client.generate_image(
                    request.prompt,
                    style=self.section.style,
                    provider=self.section.provider,
                    provider_key=self.section.api_key.get_secret_value(),
                )
        except Rejected as exc:
            if isinstance(exc, ContentRejected) or not looks_like_content_refusal(str(exc)):
                raise
            raise ContentRejected(str(exc), service=exc.service, status=exc.status) from exc
        elapsed = time.perf_counter() - started
        return GeneratedImage(
            backend=self.name,
            model=result.generation_model or f"glimpse:{self.section.provider}",
            prompt=request.prompt,
            url=result.image_url,
            width=result.width,
            height=result.height,
            cost_usd=self.estimated_cost(),
            timings={"request": elapsed, "total": elapsed},
        )

    async def check(self) -> None:
        """The Glimpse key works (settings are readable). The provider key itself is only
        proven by a generation, which would spend one of the day's six."""
        await self.client.get_image_settings()
