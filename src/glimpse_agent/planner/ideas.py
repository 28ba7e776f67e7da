"""What to post next: a topic and an "angle", rotated so the feed never feels repetitive.

An angle is a composition, a time of day and a mood from a small built-in vocabulary
(``angle_cores()``: 8 x 6 x 6 = 288 of them), followed by the persona's art style. Topics rotate
least-recently-used first; for the chosen topic, an angle whose (topic, angle) pair was not
used within ``IDEA_MEMORY`` is picked, preferring one that shares no part with the last few
ideas. Only when every pair is used does the least recently used pair come back.

A past idea's angle is recognised from ``PastIdea.angle`` when the caller recorded it (it
should: it is exact), else by finding an angle's wording inside the past prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import TypeVar

from glimpse_agent.persona import Persona
from glimpse_agent.planner._text import STOPWORDS, normalise, stable_int, tag_key

IDEA_MEMORY = timedelta(days=30)
# Ideas this recent make their composition / light / mood less attractive for the next one.
RECENT_FOR_VARIETY = 3
MAX_HASHTAGS = 5
# is_repeat: two prompts sharing this share of their content words are the same idea.
DEFAULT_OVERLAP = 0.8
_STYLE_SEPARATOR = " — in "

COMPOSITIONS = (
    "extreme close-up",
    "wide establishing shot",
    "low-angle view",
    "bird's-eye view",
    "seen through a rain-streaked window",
    "mirrored in still water",
    "off-centre silhouette",
    "symmetrical frame",
)
TIMES_OF_DAY = (
    "at first light",
    "at high noon",
    "at golden hour",
    "at blue hour",
    "in the dead of night",
    "under a storm sky",
)
MOODS = ("serene", "melancholic", "playful", "eerie", "triumphant", "nostalgic")

_Parts = tuple[str, str, str]
_NEVER = datetime.min  # naive sentinel, only compared through _age_key
_K = TypeVar("_K")


@dataclass(frozen=True, slots=True)
class PastIdea:
    """A post already made: its topic, the image prompt it used, when, and (ideally) its angle."""

    topic: str
    prompt: str
    at: datetime
    angle: str = ""


@dataclass(frozen=True, slots=True)
class PostIdea:
    """What to make next. ``angle`` already includes the persona's art style."""

    topic: str
    angle: str
    hashtags: tuple[str, ...]


@cache
def angle_cores() -> tuple[str, ...]:
    """Every built-in angle without the art style, in a fixed order."""
    return tuple(_core(p) for p in _all_parts())


@cache
def _all_parts() -> tuple[_Parts, ...]:
    return tuple((c, t, m) for c in COMPOSITIONS for t in TIMES_OF_DAY for m in MOODS)


def _core(parts: _Parts) -> str:
    composition, time_of_day, mood = parts
    return f"{composition}, {time_of_day}, {mood} mood"


@cache
def _parts_by_normalised_core() -> dict[str, _Parts]:
    return {normalise(_core(p)): p for p in _all_parts()}


def next_idea(
    persona: Persona, history: Sequence[PastIdea], now: datetime, *, seed: str
) -> PostIdea:
    """The next (topic, angle) to post, deterministic for the same inputs and ``seed``."""
    topics = _unique(persona.topics)
    last_topic_use: dict[str, datetime] = {}
    last_pair_use: dict[tuple[str, _Parts], datetime] = {}
    recent: set[tuple[str, _Parts]] = set()
    known: list[tuple[datetime, _Parts]] = []
    cutoff = now - IDEA_MEMORY
    for past in history:
        topic = normalise(past.topic)
        _keep_latest(last_topic_use, topic, past.at)
        for parts in _angles_of(past):
            _keep_latest(last_pair_use, (topic, parts), past.at)
            known.append((past.at, parts))
            if past.at > cutoff:
                recent.add((topic, parts))

    # Least recently used first; never-used topics first of all, in seed order.
    ordered = sorted(
        topics,
        key=lambda t: (_age_key(last_topic_use.get(normalise(t))), stable_int(seed, "topic", t)),
    )
    known.sort(key=lambda k: k[0], reverse=True)
    just_used = [parts for _, parts in known[:RECENT_FOR_VARIETY]]

    for topic in ordered:
        key = normalise(topic)
        fresh = [p for p in _all_parts() if (key, p) not in recent]
        if fresh:
            # Same topic, same composition and light, another mood is the same picture again:
            # first keep away from this topic's own recent angles, then from the last ideas.
            mine = [parts for t, parts in recent if t == key]
            parts = min(
                fresh,
                key=lambda p: (
                    _closest(p, mine),
                    _shared_parts(p, just_used),
                    stable_int(seed, topic, _core(p)),
                ),
            )
            return _idea(persona, topic, parts)

    # Every pair used within the memory window: the least recently used pair comes back.
    topic = ordered[0]
    parts = min(
        _all_parts(),
        key=lambda p: (
            _age_key(last_pair_use.get((normalise(topic), p))),
            stable_int(seed, topic, _core(p)),
        ),
    )
    return _idea(persona, topic, parts)


def is_repeat(
    prompt: str,
    history: Sequence[PastIdea],
    now: datetime,
    days: int = 30,
    *,
    overlap: float = DEFAULT_OVERLAP,
    common: str = "",
) -> bool:
    """Whether ``prompt`` repeats one used in the last ``days`` days (see ``is_repeat_of``)."""
    cutoff = now - timedelta(days=days)
    recent = (past.prompt for past in history if past.at > cutoff)
    return is_repeat_of(prompt, recent, overlap=overlap, common=common)


def is_repeat_of(
    prompt: str,
    earlier: Iterable[str],
    *,
    overlap: float = DEFAULT_OVERLAP,
    common: str = "",
) -> bool:
    """Whether ``prompt`` is the same idea as one of the ``earlier`` prompts, whenever they
    were used (the caller chooses which count: ``is_repeat`` takes those of the last days).

    Equal after normalisation (case, punctuation, whitespace), or sharing at least ``overlap``
    of their content words (Jaccard), counts as a repeat. Words of ``common`` (pass the
    persona's art style: every prompt carries it) are left out of the comparison, so that
    what decides is the subject and the angle, not the shared style.
    """
    text = normalise(prompt)
    shared = _prompt_words(normalise(common))
    words = _prompt_words(text) - shared
    for other_prompt in earlier:
        other = normalise(other_prompt)
        if other == text:
            return True
        other_words = _prompt_words(other) - shared
        if words and other_words:
            jaccard = len(words & other_words) / len(words | other_words)
            if jaccard >= overlap:
                return True
    return False


def _prompt_words(normalised: str) -> frozenset[str]:
    return frozenset(w for w in normalised.split() if w not in STOPWORDS)


def _idea(persona: Persona, topic: str, parts: _Parts) -> PostIdea:
    angle = _core(parts)
    if persona.art_style.strip():
        angle = f"{angle}{_STYLE_SEPARATOR}{persona.art_style.strip()}"
    return PostIdea(topic=topic, angle=angle, hashtags=_hashtags(persona, topic))


def _hashtags(persona: Persona, topic: str) -> tuple[str, ...]:
    tags = list(persona.hashtags[: MAX_HASHTAGS - 1])
    # A short topic makes a readable tag (#impossiblerainbows); a long one would not.
    words = normalise(topic).split()
    if 1 <= len(words) <= 2:
        topic_tag = "#" + "".join(words)
        if 3 <= len(topic_tag) <= 31 and tag_key(topic_tag) not in {tag_key(t) for t in tags}:
            tags.append(topic_tag)
    return tuple(tags[:MAX_HASHTAGS])


def _angles_of(past: PastIdea) -> tuple[_Parts, ...]:
    """The built-in angle(s) a past idea used: from its recorded angle, else from its prompt."""
    return _angles_in(past.angle, past.prompt)


# The same history is scanned at every call; remembering each entry's angles keeps a month of
# six posts a day cheap even when only prompts were recorded.
@lru_cache(maxsize=4096)
def _angles_in(angle: str, prompt: str) -> tuple[_Parts, ...]:
    if angle:
        exact = _parts_by_normalised_core().get(normalise(angle.split(_STYLE_SEPARATOR, 1)[0]))
        if exact is not None:
            return (exact,)
    # Padded with spaces so a core only matches on word boundaries ("low angle" in "below angle").
    haystacks = [f" {h} " for h in (normalise(angle), normalise(prompt)) if h]
    return tuple(
        parts
        for marker, cores in _cores_by_mood().items()
        if any(marker in h for h in haystacks)
        for core, parts in cores
        if any(core in h for h in haystacks)
    )


@cache
def _cores_by_mood() -> dict[str, tuple[tuple[str, _Parts], ...]]:
    """Padded normalised cores grouped under their padded " <mood> mood " marker."""
    return {
        f" {normalise(mood)} mood ": tuple(
            (f" {core} ", parts)
            for core, parts in _parts_by_normalised_core().items()
            if parts[2] == mood
        )
        for mood in MOODS
    }


def _closest(parts: _Parts, others: Iterable[_Parts]) -> int:
    """How many parts ``parts`` shares with the most similar of ``others`` (0 if none)."""
    return max((sum(a == b for a, b in zip(parts, o, strict=True)) for o in others), default=0)


def _shared_parts(parts: _Parts, just_used: Iterable[_Parts]) -> int:
    return sum(a == b for used in just_used for a, b in zip(parts, used, strict=True))


def _keep_latest(seen: dict[_K, datetime], key: _K, at: datetime) -> None:
    if key not in seen or at > seen[key]:
        seen[key] = at


def _age_key(at: datetime | None) -> tuple[int, datetime]:
    # Never used sorts before any real instant without comparing naive and aware datetimes.
    return (0, _NEVER) if at is None else (1, at.astimezone(UTC).replace(tzinfo=None))


def _unique(topics: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for topic in topics:
        # A topic of only punctuation still counts, under its raw text.
        key = normalise(topic) or topic
        if key not in seen:
            seen.add(key)
            out.append(topic)
    return out
