"""The shapes the writing room shares: what a caption request carries, what comes back, and the
two small protocols a caption source and the Glimpse helper endpoints satisfy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

TextKind = Literal["caption", "comment", "reply", "prompt"]


@dataclass(frozen=True)
class CaptionRequest:
    """Everything a caption source may use. All of it is our own content (trusted)."""

    topic: str
    image_prompt: str
    hashtags: list[str] = field(default_factory=list)
    image_url: str | None = None
    image_bytes: bytes | None = None


@dataclass(frozen=True)
class Caption:
    """A caption that passed the safety filter, and the source that wrote it."""

    text: str
    source: str


class CaptionSource(Protocol):
    """One link of the caption chain. Raises our ``ServiceError`` subclasses on failure.

    ``attempt`` is 0 for the first draft and 1 when the previous draft was refused by the safety
    filter, so a source can vary its output (a new seed, a stricter instruction)."""

    name: str

    async def write_caption(self, request: CaptionRequest, attempt: int) -> str: ...


class GlimpseHelpers(Protocol):
    """The two Glimpse helper endpoints the writing room uses; the Glimpse client satisfies it."""

    async def suggest_captions(
        self,
        *,
        image_url: str | None = None,
        prompt: str | None = None,
        hashtags: list[str] | None = None,
    ) -> list[str]: ...

    async def optimize_prompt(self, prompt: str, *, style: str | None = None) -> str: ...
