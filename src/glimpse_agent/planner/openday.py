"""One local day as the daemon (and `plan`) sees it at ``now``: the whole plan, with stable ids
and times, and what is left of it.

The recipe: the day's post total is what the quota allows when the day's window opens
(``posts_allowed``), raised as far as the post slots still to come fit the quota of each UTC day
they fall on (``posts_that_fit``); the whole plan is planned with that total, done slots
included, so ids and times stay the same across restarts; then ``schedule`` says what is done,
what waits for its retry, what runs when, and where a post slot missed while the process was
down is made up (later in the window, ``min_post_gap`` from the posts made and planned).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from glimpse_agent.persona import Persona
from glimpse_agent.planner.dayplan import (
    POST_BUCKETS,
    DayPlan,
    plan_day,
    posts_allowed,
    posts_that_fit,
)
from glimpse_agent.planner.schedule import MakeUp, Schedule, schedule_slots
from glimpse_agent.planner.window import active_window


@dataclass(frozen=True, slots=True)
class OpenDay:
    """A local day planned at some ``now``."""

    local_day: date
    #: The active window, UTC (end exclusive).
    window: tuple[datetime, datetime]
    #: Every slot of the day, done ones included: the ids and times a restart finds again.
    full: DayPlan
    #: Slot id -> when it runs again, for the slots waiting for a retry.
    retries: Mapping[str, datetime]
    #: Each slot's decision at ``now`` (nothing is pending from the day's own point of view).
    schedule: Schedule

    @property
    def ahead(self) -> DayPlan:
        """The slots still to run (on time, or late within the grace), each at its due time
        (a retried one at its retry time): what the agent hands the daemon."""
        return DayPlan(self.local_day, tuple(d.slot for d in self.schedule.runs))


def plan_open_day(
    persona: Persona,
    local_day: date,
    *,
    now: datetime,
    done: Iterable[str],
    retries: Mapping[str, datetime],
    left_at: Callable[[datetime], Mapping[str, int]],
    jitter_minutes: float,
    grace_minutes: float,
    posted: Iterable[datetime] = (),
    buckets: Sequence[str] = POST_BUCKETS,
) -> OpenDay:
    """Plan ``local_day`` at ``now``. ``left_at(t)`` is what is left in each bucket at ``t``
    (asked for instants from ``now`` on only); ``done`` are the day's slots already run;
    ``posted`` when our recent posts went out (a post slot made up keeps its gap from them);
    ``buckets`` the buckets one post spends (``post_buckets`` of the image chain)."""
    done_ids = frozenset(done)
    start, end = active_window(persona, local_day)
    posted_count = sum(1 for s in done_ids if "/post/" in s)
    # Quota as it will stand when the day's window opens: daily caps reset at midnight UTC,
    # which for most zones is not the local midnight we plan at.
    floor = posts_allowed(persona, posted_count, left_at(max(now, start)), buckets=buckets)
    allowed = posts_that_fit(
        persona,
        local_day,
        done=done_ids,
        floor=floor,
        left_at=lambda t: left_at(max(now, t)),
        jitter_minutes=jitter_minutes,
        buckets=buckets,
    )
    full = plan_day(persona, local_day, posts_allowed=allowed, jitter_minutes=jitter_minutes)
    decided = schedule_slots(
        [full],
        now=now,
        grace=timedelta(minutes=grace_minutes),
        done=done_ids,
        retries=retries,
        make_up=MakeUp(
            min_gap=timedelta(minutes=persona.min_post_gap_minutes),
            window_ends={local_day: end},
            posted=tuple(posted),
        ),
    )
    return OpenDay(local_day, (start, end), full, dict(retries), decided)
