"""The persona file (``personas/*.toml``): who the agent is and how much it does.

Key names are a public contract: add fields freely, never rename one.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: str) -> time:
    m = _HHMM.match(value)
    if not m:
        raise ValueError(f'expected a local time as "HH:MM" (00:00-23:59), got {value!r}')
    return time(int(m.group(1)), int(m.group(2)))


class Engagement(BaseModel):
    """How much the persona engages each day. The platform's own hourly limits still apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    likes_per_day: Annotated[int, Field(ge=0, le=1440)] = 20
    comments_per_day: Annotated[int, Field(ge=0, le=720)] = 4
    follows_per_day: Annotated[int, Field(ge=0, le=720)] = 2
    follow_back: bool = True
    reply_to_comments: bool = True
    replies_per_counterpart_per_day: Annotated[int, Field(ge=0, le=20)] = 2
    sessions_per_day: Annotated[int, Field(ge=0, le=48)] = 6


class Persona(BaseModel):
    """A validated persona. Times are local to ``timezone``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{1,31}$")]
    display_name: str = ""
    bio: Annotated[str, Field(max_length=500)] = ""
    voice: str = ""
    topics: Annotated[list[str], Field(min_length=1)]
    art_style: str = ""
    hashtags: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    active_hours: tuple[str, str] = ("09:00", "22:00")
    posts_per_day: Annotated[int, Field(ge=0, le=6)] = 3
    min_post_gap_minutes: Annotated[int, Field(ge=0, le=720)] = 90
    budget_usd_per_day: Annotated[float, Field(ge=0)] = 1.0
    nsfw: bool = False
    caption_examples: list[str] = Field(default_factory=list)
    comment_examples: list[str] = Field(default_factory=list)
    engagement: Engagement = Field(default_factory=Engagement)

    @field_validator("topics")
    @classmethod
    def _topics_not_blank(cls, v: list[str]) -> list[str]:
        cleaned = [t.strip() for t in v]
        if any(not t for t in cleaned):
            raise ValueError("topics must not contain empty strings")
        return cleaned

    @field_validator("hashtags")
    @classmethod
    def _hashtags_shape(cls, v: list[str]) -> list[str]:
        out = []
        for tag in v:
            tag = tag.strip()
            if not tag.startswith("#"):
                tag = "#" + tag
            if not re.fullmatch(r"#[\w]{1,60}", tag):
                raise ValueError(f"hashtag {tag!r} must be '#' followed by letters, digits or _")
            out.append(tag)
        return out

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'unknown IANA time zone {v!r} (expected e.g. "Europe/Paris", "Asia/Tokyo")'
            ) from None
        return v

    @field_validator("active_hours")
    @classmethod
    def _hours(cls, v: tuple[str, str]) -> tuple[str, str]:
        start, end = parse_hhmm(v[0]), parse_hhmm(v[1])
        if start == end:
            raise ValueError('start and end are equal; give a window such as ["08:00", "23:30"]')
        return v

    @model_validator(mode="after")
    def _defaults(self) -> Persona:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def active_start(self) -> time:
        return parse_hhmm(self.active_hours[0])

    @property
    def active_end(self) -> time:
        return parse_hhmm(self.active_hours[1])
