"""The caption chain: sources tried in ``captions.order`` until one writes a caption that the
safety filter accepts.

A source that fails (any ``ServiceError``) is logged and the next one is tried. A caption the
filter refuses is regenerated once (``produce_safe``), starting from the source *after* the one
that wrote it — a flow that adds a link will add it again, the next source will not — or from
the same source when it was the last. If that one is refused too, the post is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from glimpse_agent.clock import Clock, SystemClock
from glimpse_agent.errors import RateLimited, Rejected, ServiceError
from glimpse_agent.writing.base import Caption, CaptionRequest, CaptionSource, GlimpseHelpers
from glimpse_agent.writing.safety import HASHTAG, SafetyFilter, produce_safe
from glimpse_agent.writing.templates import Templates


class GlimpseCaptionSource:
    """Captions from Glimpse's own ``POST /captions/suggest`` helper."""

    name = "glimpse"

    def __init__(self, helpers: GlimpseHelpers) -> None:
        self.helpers = helpers

    async def write_caption(self, request: CaptionRequest, attempt: int) -> str:
        suggestions = [
            s
            for s in await self.helpers.suggest_captions(
                image_url=request.image_url,
                prompt=request.image_prompt,
                hashtags=list(request.hashtags),
            )
            if isinstance(s, str) and s.strip()
        ]
        if not suggestions:
            raise Rejected("no caption suggestions", service="glimpse")
        return suggestions[attempt % len(suggestions)]


class TemplateCaptionSource:
    """Captions from persona fields alone: always works."""

    name = "template"

    def __init__(self, templates: Templates, seed: int = 0) -> None:
        self.templates = templates
        self.seed = seed

    async def write_caption(self, request: CaptionRequest, attempt: int) -> str:
        self.seed += 1
        return self.templates.caption(request, self.seed + attempt * 1009)


def with_hashtags(text: str, wanted: Sequence[str], max_hashtags: int) -> str:
    """``text`` plus the requested hashtags it lacks, within ``max_hashtags`` in total."""
    wanted = [t if t.startswith("#") else f"#{t}" for t in wanted if t.strip("#")]
    present = {t.lower() for t in HASHTAG.findall(text)}
    room = max_hashtags - len(present)
    missing = [t for t in wanted if t.lower() not in present][: max(room, 0)]
    return f"{text.rstrip()}\n\n{' '.join(missing)}" if missing else text


#: The longest Retry-After a caption source is rested for (a longer one is a mistake or a
#: daily quota: a day later it is worth asking again).
MAX_REST = timedelta(days=1)


class CaptionChain:
    """Captions from the first source that works, checked by the safety filter. A source that
    answered 429 with a Retry-After is not asked again before that time."""

    def __init__(
        self,
        sources: Sequence[CaptionSource],
        safety: SafetyFilter,
        *,
        log: Any,
        clock: Clock | None = None,
    ) -> None:
        self.sources = list(sources)
        self.safety = safety
        self.log = log
        self.clock = clock or SystemClock()
        self._rest_until: dict[str, datetime] = {}

    @property
    def order(self) -> list[str]:
        return [s.name for s in self.sources]

    async def caption(self, request: CaptionRequest) -> Caption | None:
        """A safe caption and its source, or None (nothing written, or refused twice)."""
        used: list[int] = []

        async def generate(attempt: int) -> str | None:
            start = 0
            if used:
                start = min(used[-1] + 1, len(self.sources) - 1)
            found = await self._first(request, attempt, start)
            if found is None:
                return None
            index, text = found
            used.append(index)
            return with_hashtags(text, request.hashtags, self.safety.section.max_hashtags)

        text = await produce_safe(
            generate, lambda t: self.safety.check(t, "caption"), log=self.log, action="caption"
        )
        if text is None:
            return None
        source = self.sources[used[-1]].name
        self.log.info("caption.ready", source=source, attempts=len(used))
        return Caption(text, source)

    async def _first(
        self, request: CaptionRequest, attempt: int, start: int
    ) -> tuple[int, str] | None:
        for index in range(start, len(self.sources)):
            source = self.sources[index]
            rest_until = self._rest_until.get(source.name)
            if rest_until is not None and self.clock.now() < rest_until:
                self.log.info(
                    "caption.source_resting", source=source.name, until=rest_until.isoformat()
                )
                continue
            try:
                text = await source.write_caption(request, attempt)
            except ServiceError as exc:
                rest = exc.rest(MAX_REST) if isinstance(exc, RateLimited) else None
                if rest is not None:
                    self._rest_until[source.name] = self.clock.now() + rest
                level = "error" if isinstance(exc, Rejected) else "warning"
                getattr(self.log, level)(
                    "caption.source_failed",
                    source=source.name,
                    error=str(exc),
                    kind=type(exc).__name__,
                )
                continue
            text = re.sub(r"[ \t]+\n", "\n", text).strip()
            if text:
                return index, text
            self.log.warning(
                "caption.source_failed", source=source.name, error="empty text", kind="BadResponse"
            )
        self.log.error("caption.all_sources_failed", order=self.order[start:])
        return None
