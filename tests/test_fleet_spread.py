"""Personas of a fleet that plan a post for the same instant do not all reach Glimpse in the same
second: each persona's jitter (a hash of its name, the day and the slot) spreads them. 256
personas alike but for their names, one post a day in the same window: without jitter all 256
land on one second; with the default 20 minutes, no second holds more than 2."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

from glimpse_agent.persona import Persona
from glimpse_agent.planner.dayplan import plan_day


def _post_times(jitter_minutes: float, n: int = 256) -> list[datetime]:
    times: list[datetime] = []
    for i in range(n):
        persona = Persona.model_validate(
            {
                "name": f"p{i:03d}",
                "timezone": "UTC",
                "active_hours": ["08:00", "20:00"],
                "posts_per_day": 1,
                "topics": ["lighthouses at dusk"],
            }
        )
        plan = plan_day(persona, date(2026, 3, 2), posts_allowed=1, jitter_minutes=jitter_minutes)
        times += [slot.at for slot in plan.posts]
    return times


def test_without_jitter_every_persona_posts_in_the_same_second() -> None:
    per_second = Counter(t.replace(microsecond=0) for t in _post_times(0))
    assert list(per_second.values()) == [256]


def test_the_default_jitter_spreads_a_fleet_over_the_window() -> None:
    times = _post_times(20)
    per_second = Counter(t.replace(microsecond=0) for t in times)
    per_minute = Counter(t.replace(second=0, microsecond=0) for t in times)
    assert len(times) == 256
    assert max(per_second.values()) <= 2, per_second.most_common(3)
    assert max(per_minute.values()) <= 16, per_minute.most_common(3)
    assert (max(times) - min(times)).total_seconds() > 35 * 60  # over most of +-20 minutes
