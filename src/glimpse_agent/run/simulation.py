"""The same planner and agents, driven by a simulated clock instead of APScheduler.

Events (plan, slot, heartbeat) of one or more agents go on one timeline; the clock jumps from
event to event, so a week runs in seconds while every decision is the one the daemon would make:
when each slot runs (on time, late within the misfire grace, at its retry time) or that it is
missed is decided by ``planner.schedule``, as in the daemon, with the agent's own grace.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from glimpse_agent.agent import Outcome
from glimpse_agent.clock import SimulatedClock
from glimpse_agent.config import AgentConfig
from glimpse_agent.logs import get_logger
from glimpse_agent.persona import Persona
from glimpse_agent.planner import DayPlan, Slot, schedule_slots

# A heartbeat every 10 minutes would dominate a simulated week; once an hour shows the same thing.
SIM_HEARTBEAT = timedelta(hours=1)


class Simulated(Protocol):
    """What the simulation needs from an agent (``Agent`` is one)."""

    @property
    def persona(self) -> Persona: ...

    @property
    def config(self) -> AgentConfig: ...

    async def startup(self) -> None: ...

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]: ...

    async def run_slot(self, slot: Slot) -> Outcome: ...

    async def heartbeat(self) -> None: ...


@dataclass
class PersonaDay:
    """What one persona planned and did on one of its local days."""

    planned_posts: int = 0
    posts: int = 0
    post_failures: int = 0
    likes: int = 0
    comments: int = 0
    replies: int = 0
    follows: int = 0
    sessions: int = 0
    post_times: list[datetime] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        """Nothing was planned, done or tried on this day."""
        return not (self.planned_posts or self.posts or self.sessions or self.post_failures)


@dataclass
class SimulationResult:
    start: datetime
    end: datetime
    days: dict[str, dict[date, PersonaDay]]  # persona -> local day -> summary

    def summary_lines(self) -> list[str]:
        lines = []
        for persona, days in self.days.items():
            lines.append(f"{persona}:")
            for day in sorted(days):
                d = days[day]
                if d.idle:
                    continue  # a local day the simulated span only grazed
                lines.append(
                    f"  {day}  posts {d.posts}/{d.planned_posts}  likes {d.likes}  "
                    f"comments {d.comments}  replies {d.replies}  follows {d.follows}  "
                    f"sessions {d.sessions}"
                    + (f"  post failures {d.post_failures}" if d.post_failures else "")
                )
        return lines


class Simulation:
    """Runs agents from ``start`` for ``days`` days of simulated time."""

    def __init__(
        self,
        agents: Sequence[Simulated],
        clock: SimulatedClock,
        *,
        on_advance: Callable[[datetime], None] | None = None,
    ) -> None:
        self.agents = list(agents)
        self.clock = clock
        self.on_advance = on_advance
        self.log = get_logger("glimpse_agent.run.simulation")

    async def run(self, days: int) -> SimulationResult:
        start = self.clock.now()
        end = start + timedelta(days=days)
        result: dict[str, dict[date, PersonaDay]] = {
            a.persona.name: defaultdict(PersonaDay) for a in self.agents
        }
        counter = itertools.count()
        events: list[tuple[datetime, int, int, str, Slot | None]] = []
        # Per agent, the slots queued and not yet run: the daemon's jobs waiting for their time.
        pending: list[set[str]] = [set() for _ in self.agents]
        for i, agent in enumerate(self.agents):
            await agent.startup()
            heapq.heappush(events, (start, next(counter), i, "plan", None))
            heapq.heappush(events, (start + SIM_HEARTBEAT, next(counter), i, "heartbeat", None))
        while events:
            at, _, i, kind, slot = heapq.heappop(events)
            if at >= end:
                break
            if at > self.clock.now():
                self.clock.set(at)
                if self.on_advance is not None:
                    self.on_advance(at)
            agent = self.agents[i]
            name = agent.persona.name
            if kind == "plan":
                now = self.clock.now()
                plans, next_at = await agent.plan_day(now)
                grace = timedelta(minutes=agent.config.daemon.misfire_grace_minutes)
                decided = schedule_slots(plans, now=now, grace=grace, pending=pending[i])
                if decided.missed:
                    self.log.warning(
                        "slots_missed",
                        persona=name,
                        slots=[s.slot_id for s in decided.missed],
                        grace_minutes=grace / timedelta(minutes=1),
                    )
                for plan in plans:
                    # Planned: made so far, plus still to make within the simulated span (a slot
                    # missed is planned but not made).
                    day = result[name][plan.local_day]
                    day.planned_posts = max(
                        day.planned_posts,
                        day.posts + sum(1 for s in plan.posts if s.at < end),
                    )
                for run in decided.runs:
                    assert run.run_at is not None
                    pending[i].add(run.slot.slot_id)
                    heapq.heappush(events, (run.run_at, next(counter), i, "slot", run.slot))
                heapq.heappush(events, (next_at, next(counter), i, "plan", None))
            elif kind == "heartbeat":
                await agent.heartbeat()
                heapq.heappush(events, (at + SIM_HEARTBEAT, next(counter), i, "heartbeat", None))
            else:
                assert slot is not None
                outcome = await agent.run_slot(slot)
                if outcome.retry_at is not None:  # as the daemon does: the same slot later
                    heapq.heappush(events, (outcome.retry_at, next(counter), i, "slot", slot))
                    continue
                pending[i].discard(slot.slot_id)
                local_day = date.fromisoformat(slot.slot_id.split("/")[0])
                _tally(result[name][local_day], outcome, self.clock.now())
        return SimulationResult(start, end, {k: _within(v, start, end) for k, v in result.items()})


def _within(days: dict[date, PersonaDay], start: datetime, end: datetime) -> dict[date, PersonaDay]:
    """``days`` without the idle local days outside the simulated UTC days. Planning looks a
    day ahead, so a persona east of UTC gets an empty entry for the local day after the last
    one (west of UTC, the one before the first); a day like that is kept when something
    happened on it, since then it was partly simulated."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return {day: d for day, d in days.items() if first <= day <= last or not d.idle}


def _tally(day: PersonaDay, outcome: Outcome, now: datetime) -> None:
    if outcome.kind == "post":
        if outcome.ok and outcome.post_id:
            day.posts += 1
            day.post_times.append(now)
        elif not outcome.ok:
            day.post_failures += 1
        return
    day.sessions += 1
    day.likes += outcome.counts.get("like", 0)
    day.comments += outcome.counts.get("comment", 0)
    day.replies += outcome.counts.get("reply", 0)
    day.follows += outcome.counts.get("follow", 0)
