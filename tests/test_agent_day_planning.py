"""Agent day planning over many days: UTC-straddling windows and what the process keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from glimpse_agent.agent import Agent
from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.config import parse_config
from glimpse_agent.ledger import AsyncLedger, Ledger
from glimpse_agent.persona import Engagement, Persona
from glimpse_agent.planner import Slot

LOS_ANGELES = Persona(
    name="westcoast",
    topics=["harbours"],
    timezone="America/Los_Angeles",
    active_hours=("08:00", "23:00"),  # 15:00/16:00 UTC to 06:00/07:00 UTC the next day
    posts_per_day=4,
    min_post_gap_minutes=60,
    engagement=Engagement(sessions_per_day=2),
)


class Harness:
    def __init__(self, agent: Agent, ledger: AsyncLedger, clock: SimulatedClock) -> None:
        self.agent, self.ledger, self.clock = agent, ledger, clock

    @property
    def sync(self) -> Ledger:
        return self.ledger.ledger


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    clock = SimulatedClock(utc(2026, 6, 1, 8))
    config = parse_config({"persona": "p.toml"}, source=tmp_path / "agent.toml", env={})
    ledger = await AsyncLedger.open(tmp_path / "state", clock=clock)
    nothing: Any = None  # planning needs no Glimpse, image backend or writer
    agent = Agent(
        config,
        LOS_ANGELES,
        glimpse=nothing,
        ledger=ledger,
        router=nothing,
        writing=nothing,
        clock=clock,
    )
    try:
        yield Harness(agent, ledger, clock)
    finally:
        await ledger.aclose()


def _posted(h: Harness, slot: Slot) -> None:
    with h.sync.transaction():
        h.sync.record_action("posts", slot.at, ref=slot.slot_id)
        h.sync.mark_slot_done(slot.slot_id, slot.at)


async def test_a_window_across_midnight_utc_plans_every_post_every_day(harness: Harness) -> None:
    """A persona whose local day straddles midnight UTC posts its full posts_per_day every local
    day, and never more than that in any UTC day."""
    h, per_day = harness, LOS_ANGELES.posts_per_day
    planned: dict[date, int] = {}
    for _ in range(6):
        plans, next_at = await h.agent.plan_day(h.clock.now())
        for plan in plans:
            planned[plan.local_day] = max(planned.get(plan.local_day, 0), len(plan.posts))
            for slot in plan.posts:
                if not h.sync.slot_done(slot.slot_id):
                    assert h.sync.remaining("posts", slot.at, LOS_ANGELES) > 0
                    _posted(h, slot)
        h.clock.set(next_at)
    assert set(planned.values()) == {per_day}, planned
    first = min(planned)
    for n in range(1, 6):
        assert h.sync.count_on("posts", first + timedelta(days=n)) <= per_day


async def test_the_agent_forgets_closed_days(harness: Harness) -> None:
    """Re-planning every local midnight for weeks keeps only the days still open in memory."""
    h = harness
    h.agent.days.dry_done.add("2026-06-01/engage/1")
    # Planned retries live in the ledger (a restart keeps them) and are pruned with the slots.
    h.sync.plan_retry("2026-06-01/post/1", h.clock.now())
    for _ in range(30):
        _, next_at = await h.agent.plan_day(h.clock.now())
        h.clock.set(next_at)
    h.sync.prune(h.clock.now())
    assert len(h.agent.days.plans) <= 2
    assert h.sync.planned_retries("2026-06-01") == {}
    assert h.agent.days.dry_done == set()
