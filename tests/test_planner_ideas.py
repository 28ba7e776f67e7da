"""Post ideas: topics rotate, (topic, angle) pairs stay away for 30 days, repeats are caught."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from glimpse_agent.config import load_persona
from glimpse_agent.persona import Persona
from glimpse_agent.planner import IDEA_MEMORY, PastIdea, angle_cores, is_repeat, next_idea

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def persona(topics: list[str], *, style: str = "", tags: list[str] | None = None) -> Persona:
    return Persona(name="tester", topics=topics, art_style=style, hashtags=tags or [])


def simulate(who: Persona, days: int, per_day: int, *, record_angle: bool = True) -> list[PastIdea]:
    """Post ``per_day`` ideas a day for ``days`` days, feeding each back as history."""
    history: list[PastIdea] = []
    for day in range(days):
        for n in range(per_day):
            at = NOW + timedelta(days=day, hours=3 * n)
            idea = next_idea(who, history, at, seed=f"{at.date()}/post/{n + 1}")
            # Without a recorded angle, the planner has to recognise it inside the prompt.
            prompt = f"{idea.topic}, {idea.angle}, highly detailed"
            history.append(PastIdea(idea.topic, prompt, at, idea.angle if record_angle else ""))
    return history


def core_of(past: PastIdea) -> str:
    return next(c for c in angle_cores() if c in past.prompt)


def assert_no_pair_within_memory(history: list[PastIdea]) -> None:
    last: dict[tuple[str, str], datetime] = {}
    for past in history:
        key = (past.topic, core_of(past))
        if key in last:
            assert past.at - last[key] >= IDEA_MEMORY, key
        last[key] = past.at


@pytest.mark.parametrize("record_angle", [True, False])
@pytest.mark.parametrize(
    ("topics", "per_day"),
    [(["lighthouses"], 6), (["fog", "neon rain", "tea"], 3), (["a b", "c d", "e f", "g h"], 2)],
)
def test_sixty_days_never_repeat_a_pair_within_thirty_days(
    topics: list[str], per_day: int, record_angle: bool
) -> None:
    """Over 60 simulated days no (topic, angle) comes back within 30 days, angle recorded or not."""
    history = simulate(persona(topics), days=60, per_day=per_day, record_angle=record_angle)
    assert len(history) == 60 * per_day
    assert_no_pair_within_memory(history)


def test_topics_rotate_least_recently_used_first() -> None:
    """With three topics, each round of three ideas uses every topic once."""
    history = simulate(persona(["fog", "neon rain", "tea"]), days=10, per_day=3)
    topics = [p.topic for p in history]
    for i in range(0, len(topics), 3):
        assert sorted(topics[i : i + 3]) == ["fog", "neon rain", "tea"]
    assert Counter(topics) == {"fog": 10, "neon rain": 10, "tea": 10}


def test_consecutive_ideas_vary_their_angle_parts() -> None:
    """The next idea shares no composition, light or mood with the one before it."""
    history = simulate(persona(["lighthouses"]), days=5, per_day=4)
    cores = [core_of(p).split(", ") for p in history]
    for before, after in itertools.pairwise(cores):
        assert all(a != b for a, b in zip(before, after, strict=True))


def test_same_inputs_same_idea_and_seed_breaks_ties() -> None:
    """The idea is a pure function of its inputs; the seed decides among equally fresh topics."""
    who = persona(["fog", "neon rain", "tea", "rooftops", "trains"])
    assert next_idea(who, [], NOW, seed="a") == next_idea(who, [], NOW, seed="a")
    firsts = {next_idea(who, [], NOW, seed=f"s{i}").topic for i in range(30)}
    assert len(firsts) > 1


def test_a_topic_unused_for_longest_is_chosen() -> None:
    """The topic with the oldest last use wins over more recently used ones."""
    who = persona(["fog", "neon rain", "tea"])
    history = [
        PastIdea("fog", "p1", NOW - timedelta(days=1)),
        PastIdea("tea", "p2", NOW - timedelta(days=3)),
        PastIdea("neon rain", "p3", NOW - timedelta(days=2)),
    ]
    assert next_idea(who, history, NOW, seed="x").topic == "tea"


def test_topic_matching_ignores_case_and_punctuation() -> None:
    """A past idea recorded as "Neon-Rain!" counts as the topic "neon rain"."""
    who = persona(["neon rain", "fog"])
    history = [PastIdea("Neon-Rain!", "p", NOW - timedelta(hours=1))]
    assert next_idea(who, history, NOW, seed="x").topic == "fog"


def test_when_every_pair_is_used_the_least_recent_comes_back() -> None:
    """With all combinations used within 30 days, the least recently used pair is picked."""
    who = persona(["lighthouses"])
    cores = angle_cores()
    oldest = cores[17]
    history = [
        PastIdea("lighthouses", f"prompt {i}", NOW - timedelta(minutes=i + 1), core)
        for i, core in enumerate(c for c in cores if c != oldest)
    ]
    history.append(PastIdea("lighthouses", "old prompt", NOW - timedelta(days=20), oldest))
    assert next_idea(who, history, NOW, seed="x").angle == oldest


def test_pairs_older_than_thirty_days_are_fresh_again() -> None:
    """A pair last used 31 days ago may be chosen again once nothing fresher is available."""
    who = persona(["lighthouses"])
    history = [
        PastIdea("lighthouses", f"p{i}", NOW - timedelta(days=31, minutes=i), core)
        for i, core in enumerate(angle_cores())
    ]
    idea = next_idea(who, history, NOW, seed="x")
    assert idea.angle in angle_cores()


def test_angle_carries_the_art_style_and_hashtags_the_persona_tags() -> None:
    """The angle ends with the persona's art style; hashtags are the persona's plus the topic's."""
    who = persona(["impossible rainbows"], style="loose oil paint", tags=["#aiart", "#skies"])
    idea = next_idea(who, [], NOW, seed="x")
    assert idea.angle.endswith("loose oil paint")
    assert idea.angle.split(" — in ")[0] in angle_cores()
    assert idea.hashtags == ("#aiart", "#skies", "#impossiblerainbows")


def test_long_topics_get_no_topic_hashtag() -> None:
    """A long topic would make an unreadable tag, so only the persona's tags are used."""
    who = persona(["rain-soaked alleys in shinjuku"], tags=["#neon"])
    assert next_idea(who, [], NOW, seed="x").hashtags == ("#neon",)


def test_angle_vocabulary_is_unambiguous() -> None:
    """No angle's wording appears inside another's, so recognising one in a prompt is exact."""
    cores = angle_cores()
    assert len(cores) == len(set(cores)) >= 200
    padded = [f" {c.replace(',', ' ').replace('-', ' ')} " for c in cores]
    for i, a in enumerate(padded):
        assert not any(a in b for j, b in enumerate(padded) if i != j)


@pytest.mark.parametrize(
    ("prompt", "past_prompt", "age_days", "expected"),
    [
        ("A lighthouse in fog, at dawn", "a lighthouse in fog at dawn", 1, True),
        ("A LIGHTHOUSE   in fog... at dawn!", "a lighthouse in fog, at dawn", 29, True),
        ("a lighthouse in fog at dawn", "a lighthouse in fog at dawn", 31, False),
        # Same words, different order and punctuation: the same idea.
        (
            "fog, a lighthouse, at dawn, oil paint",
            "oil paint: at dawn a lighthouse in fog",
            2,
            True,
        ),
        # One word in ten changed still counts; a different subject does not.
        (
            "old stone lighthouse in thick fog at dawn oil paint heavy brushstrokes",
            "old stone lighthouse in thick fog at dusk oil paint heavy brushstrokes",
            2,
            True,
        ),
        ("neon vending machine at 3am in the rain", "a lighthouse in fog at dawn", 2, False),
        ("", "a lighthouse", 1, False),
    ],
)
def test_is_repeat(prompt: str, past_prompt: str, age_days: int, expected: bool) -> None:
    """A prompt equal after normalisation, or with high word overlap, within 30 days repeats."""
    history = [PastIdea("t", past_prompt, NOW - timedelta(days=age_days))]
    assert is_repeat(prompt, history, NOW) is expected


def test_is_repeat_window_and_overlap_are_adjustable() -> None:
    """The look-back in days and the overlap ratio are parameters."""
    history = [PastIdea("t", "red boat blue sea", NOW - timedelta(days=10))]
    assert is_repeat("red boat blue sea", history, NOW, days=30)
    assert not is_repeat("red boat blue sea", history, NOW, days=7)
    assert not is_repeat("red boat green sea", history, NOW)
    assert is_repeat("red boat green sea", history, NOW, overlap=0.5)


def test_the_shared_art_style_does_not_make_two_ideas_one() -> None:
    """Two prompts that share only the persona's (long) art style are different ideas once the
    style is passed as ``common``; the same subject and angle still repeat."""
    style = (
        "cinematic night photography, teal and magenta neon, film grain, anamorphic lens flare, "
        "shallow depth of field"
    )
    past = [
        PastIdea(
            "t",
            f"last train platform, bird's-eye view, at first light, eerie mood — in {style}",
            NOW,
        )
    ]
    other = f"last train platform, bird's-eye view, at golden hour, serene mood — in {style}"
    assert is_repeat(other, past, NOW)  # the style words swamp the comparison...
    assert not is_repeat(other, past, NOW, common=style)  # ...unless they are left out
    same = f"Last train platform: bird's-eye view at first light, eerie mood, {style}"
    assert is_repeat(same, past, NOW, common=style)


SHIPPED = sorted((Path(__file__).resolve().parents[1] / "personas").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_sixty_days_of_a_shipped_persona_never_look_like_a_repeat(path: Path) -> None:
    """The planner's fresh (topic, angle) pairs are never taken for a repeat by ``is_repeat``
    (the agent's safety net): the idea and the check agree, so no post is ever refused for
    a repeat the planner did not make — the persona's style words are in every prompt."""
    who = load_persona(path)
    history: list[PastIdea] = []
    for day in range(60):
        for n in range(who.posts_per_day):
            at = NOW + timedelta(days=day, hours=3 * n)
            idea = next_idea(who, history, at, seed=f"{at.date()}/post/{n + 1}")
            prompt = f"{idea.topic}, {idea.angle}"
            assert not is_repeat(prompt, history, at, common=who.art_style), (day, n, prompt)
            history.append(PastIdea(idea.topic, prompt, at, idea.angle))
