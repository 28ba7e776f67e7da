"""Deterministic fallbacks built from persona fields: image prompts, captions, comments and
replies with no LLM at all (the sandbox runs on them, and the caption chain ends with them).

Each method takes a ``seed``; consecutive seeds always give different text (the first part
cycles with the seed). Comments and replies never quote the post they answer: the only thing
taken from it is the author's name, and only when it looks like a plain name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from glimpse_agent.persona import Persona
from glimpse_agent.redaction import KEY_SHAPES
from glimpse_agent.writing.base import CaptionRequest

_LIGHTS = (
    "soft morning light",
    "golden hour glow",
    "moody overcast light",
    "neon reflections",
    "candlelit warmth",
    "cold blue dusk",
    "hard noon shadows",
)
_FRAMES = (
    "wide establishing shot",
    "close-up detail",
    "low angle",
    "symmetrical framing",
    "rule-of-thirds composition",
    "overhead view",
    "shallow depth of field",
)
_DETAILS = (
    "in quiet solitude",
    "after the rain",
    "at the edge of the city",
    "seen through a window",
    "in early spring",
    "under a paper moon",
    "at first snow",
)
_STYLES = ("painterly", "cinematic", "analog film look", "watercolor wash", "ink and gouache")

_OPENERS = (
    "Another study of",
    "Spent the evening with",
    "Today's frame:",
    "Lingering on",
    "A quiet take on",
    "Chasing",
    "Notes on",
)
_CLOSERS = (
    ".",
    ", more soon.",
    ", in my own light.",
    ". Tell me what you see.",
    ", as I remember it.",
)

_PRAISE = (
    "Love the",
    "Beautiful",
    "Really striking",
    "Lovely",
    "Gorgeous",
    "Such a strong",
    "So much atmosphere in the",
)
_ASPECTS = ("palette", "composition", "light", "mood", "texture", "framing", "sense of depth")
_COMMENT_ENDS = (
    "!",
    ", well done.",
    ". It stays with me.",
    ", thanks for sharing.",
    ". Made my feed better.",
)
_THANKS = (
    "Thank you",
    "Thanks so much",
    "Glad it spoke to you",
    "Appreciate you stopping by",
    "So happy you noticed",
)
_REPLY_ENDS = (
    "!",
    ". More coming soon.",
    ". That means a lot.",
    ". I had fun making this one.",
    ". More in this series soon.",
)

_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\- ]{0,23}")
_NAME_STOPWORDS = re.compile(
    r"ignore|instruction|prompt|system|admin|key|token|secret|password|http|www|dot|mode",
    re.IGNORECASE,
)


def pick(seed: int, *choices: Sequence[str]) -> list[str]:
    """One item of each list, mixed by ``seed`` so that seed and seed+1 differ in the first."""
    seed &= 0x7FFFFFFF
    out, step = [], 1
    for options in choices:
        out.append(options[(seed // step) % len(options)])
        step *= len(options)
    return out


def safe_name(name: str | None) -> str:
    """The author's name if it is a plain short name, else "" (callers then omit it)."""
    if not name:
        return ""
    name = unicodedata.normalize("NFKC", name).strip().lstrip("@")
    if not _PLAIN_NAME.fullmatch(name) or KEY_SHAPES.search(name):
        return ""
    if re.search(r"\d{4,}", name) or _NAME_STOPWORDS.search(name):
        return ""
    return " ".join(name.split())


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


class Templates:
    """Persona-flavoured text without a model. Pure: same inputs and seed, same text."""

    def __init__(self, persona: Persona, *, max_hashtags: int = 10) -> None:
        self.persona = persona
        self.max_hashtags = max_hashtags

    def image_prompt(
        self, topic: str, angle: str | None, seed: int, recent: Iterable[str] = ()
    ) -> str:
        """A prompt for ``topic`` that is not one of ``recent``."""
        seen = {_norm(p) for p in recent}
        style = self.persona.art_style.strip()
        prompt = ""
        for k in range(64):
            light, frame, detail, fallback_style = pick(
                seed + k, _LIGHTS, _FRAMES, _DETAILS, _STYLES
            )
            parts = [
                topic.strip(),
                (angle or "").strip() or detail,
                style or fallback_style,
                light,
                frame,
            ]
            prompt = ", ".join(p for p in parts if p)
            if _norm(prompt) not in seen:
                return prompt
        return prompt

    def hashtags(self, requested: Sequence[str]) -> list[str]:
        tags = [t if t.startswith("#") else f"#{t}" for t in (requested or self.persona.hashtags)]
        unique = list(dict.fromkeys(t for t in tags if re.fullmatch(r"#\w{1,60}", t)))
        return unique[: self.max_hashtags]

    def caption(self, request: CaptionRequest, seed: int) -> str:
        opener, closer = pick(seed, _OPENERS, _CLOSERS)
        text = f"{opener} {request.topic.strip()}{closer}"
        tags = self.hashtags(request.hashtags)
        return f"{text}\n\n{' '.join(tags)}" if tags else text

    def comment(
        self, author_name: str | None, topic_hint: str | None, seed: int, *, use_name: bool = True
    ) -> str:
        """A short compliment. ``use_name=False`` leaves the author's name out entirely."""
        praise, aspect, end = pick(seed, _PRAISE, _ASPECTS, _COMMENT_ENDS)
        name = safe_name(author_name) if use_name else ""
        text = f"{praise} {aspect}, {name}{end}" if name else f"{praise} {aspect}{end}"
        if topic_hint and (seed // 7) % 3 == 0:
            text += f" Reminds me of {topic_hint.strip()}."
        return text

    def reply(self, author_name: str | None, seed: int, *, use_name: bool = True) -> str:
        thanks, end = pick(seed, _THANKS, _REPLY_ENDS)
        name = safe_name(author_name) if use_name else ""
        return f"{thanks}, {name}{end}" if name else f"{thanks}{end}"
