"""One schedule: ``planner.schedule`` decides when each slot runs (on time, late within the
misfire grace, at its retry time) or that it is missed; the daemon and the simulation both use
it, so a restart makes the same decisions in either."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from glimpse_agent.agent import Agent, Outcome
from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.config import AgentConfig, parse_config
from glimpse_agent.ledger import AsyncLedger
from glimpse_agent.notify import SystemdNotifier
from glimpse_agent.persona import Engagement, Persona
from glimpse_agent.planner import (
    LATE_STEP,
    DayPlan,
    MakeUp,
    Slot,
    place_post,
    plan_day,
    plan_open_day,
    schedule_slots,
)
from glimpse_agent.run.daemon import Daemon
from glimpse_agent.run.simulation import Simulation

NOW = utc(2026, 1, 14, 12)
GRACE = timedelta(minutes=15)
MIN = timedelta(minutes=1)


def _plan(*slots: tuple[str, datetime]) -> DayPlan:
    return DayPlan(
        date(2026, 1, 14),
        tuple(Slot(sid, "post" if "/post/" in sid else "engage", at) for sid, at in slots),
    )


# ---------------------------------------------------------------------- the pure function


def test_on_time_slots_run_at_their_time() -> None:
    plan = _plan(("d/post/1", NOW + 30 * MIN), ("d/engage/1", NOW))
    decided = schedule_slots([plan], now=NOW, grace=GRACE)
    assert [(d.slot.slot_id, d.when, d.run_at) for d in decided.runs] == [
        ("d/engage/1", "on time", NOW),
        ("d/post/1", "on time", NOW + 30 * MIN),
    ]
    assert decided.missed == ()


def test_late_slots_run_now_in_planned_order_a_millisecond_apart() -> None:
    plan = _plan(("d/post/1", NOW - 10 * MIN), ("d/engage/2", NOW - 5 * MIN))
    decided = schedule_slots([plan], now=NOW, grace=GRACE)
    assert [(d.slot.slot_id, d.when, d.run_at) for d in decided.runs] == [
        ("d/post/1", "late", NOW),
        ("d/engage/2", "late", NOW + LATE_STEP),
    ]


def test_same_time_slots_keep_the_order_of_their_ids() -> None:
    at = NOW - 5 * MIN
    decided = schedule_slots([_plan(("d/post/1", at), ("d/engage/2", at))], now=NOW, grace=GRACE)
    assert [d.slot.slot_id for d in decided.runs] == ["d/engage/2", "d/post/1"]
    assert [d.run_at for d in decided.runs] == [NOW, NOW + LATE_STEP]


def test_a_slot_later_than_the_grace_is_missed_and_listed() -> None:
    plan = _plan(
        ("d/post/1", NOW - 20 * MIN),  # a restart 20 minutes after the slot
        ("d/post/2", NOW - GRACE),  # exactly the grace late: still runs
    )
    decided = schedule_slots([plan], now=NOW, grace=GRACE)
    assert [s.slot_id for s in decided.missed] == ["d/post/1"]
    assert decided.decision("d/post/1").run_at is None
    assert decided.decision("d/post/2").when == "late"


def test_a_retry_runs_at_its_retry_time_whatever_the_planned_time() -> None:
    plan = _plan(
        ("d/post/1", NOW - 3 * timedelta(hours=1)),
        ("d/post/2", NOW - 2 * timedelta(hours=1)),
        ("d/post/3", NOW - timedelta(hours=1)),
    )
    retries = {
        "d/post/1": NOW + 20 * MIN,  # still to come
        "d/post/2": NOW - 5 * MIN,  # due: runs now
        "d/post/3": NOW - 50 * MIN,  # its time passed while the process was down
    }
    decided = schedule_slots([plan], now=NOW, grace=GRACE, retries=retries)
    assert [(d.slot.slot_id, d.when, d.run_at, d.retry) for d in decided.runs] == [
        ("d/post/2", "late", NOW, True),
        ("d/post/1", "on time", NOW + 20 * MIN, True),
    ]
    assert decided.decision("d/post/1").slot.at == NOW + 20 * MIN
    assert [s.slot_id for s in decided.missed] == ["d/post/3"]
    assert decided.decision("d/post/3").retry


def test_done_and_pending_slots_are_left_alone() -> None:
    plan = _plan(("d/post/1", NOW - 5 * MIN), ("d/post/2", NOW - 4 * MIN), ("d/post/3", NOW))
    decided = schedule_slots(
        [plan],
        now=NOW,
        grace=GRACE,
        done={"d/post/1"},
        retries={"d/post/1": NOW + MIN},  # done wins: the post went out
        pending={"d/post/3"},
    )
    assert [(d.slot.slot_id, d.when) for d in decided.decisions] == [
        ("d/post/1", "done"),
        ("d/post/2", "late"),
        ("d/post/3", "pending"),
    ]
    assert [d.slot.slot_id for d in decided.runs] == ["d/post/2"]
    assert decided.decision("d/post/2").run_at == NOW  # the first late one, done ones aside


def test_a_retry_of_a_slot_no_longer_planned_is_ignored() -> None:
    plan = _plan(("d/post/1", NOW))
    decided = schedule_slots([plan], now=NOW, grace=GRACE, retries={"x/post/9": NOW})
    assert [d.slot.slot_id for d in decided.decisions] == ["d/post/1"]
    with pytest.raises(KeyError):
        decided.decision("x/post/9")


def test_slots_of_several_days_are_decided_together() -> None:
    yesterday = DayPlan(date(2026, 1, 13), (Slot("y/post/1", "post", NOW - 8 * MIN),))
    today = DayPlan(date(2026, 1, 14), (Slot("t/post/1", "post", NOW - 9 * MIN),))
    decided = schedule_slots([yesterday, today], now=NOW, grace=GRACE)
    assert [(d.slot.slot_id, d.run_at) for d in decided.runs] == [
        ("t/post/1", NOW),
        ("y/post/1", NOW + LATE_STEP),
    ]


def test_a_post_is_placed_apart_from_the_others_and_inside_the_window() -> None:
    gap, end = 90 * MIN, NOW + 10 * timedelta(hours=1)
    assert place_post(NOW, window_end=end, others=[], min_gap=gap) == NOW
    # Too close to the one an hour ago and to the one in an hour: after the later one.
    others = [NOW - 60 * MIN, NOW + 60 * MIN, NOW + 5 * timedelta(hours=1)]
    assert place_post(NOW, window_end=end, others=others, min_gap=gap) == NOW + 150 * MIN
    # Half a gap before the window's end is the last moment, as in the plan.
    assert place_post(end - 44 * MIN, window_end=end, others=[], min_gap=gap) is None
    assert place_post(end - 46 * MIN, window_end=end, others=[], min_gap=gap) == end - 46 * MIN


def test_a_post_missed_while_down_is_made_up_later_and_a_session_is_not() -> None:
    plan = _plan(
        ("d/post/1", NOW - 4 * timedelta(hours=1)),  # done at its time
        ("d/post/2", NOW - 2 * timedelta(hours=1)),  # missed while the process was down
        ("d/engage/1", NOW - timedelta(hours=1)),  # missed too
        ("d/post/3", NOW - 30 * MIN),  # missed too
        ("d/post/4", NOW + 60 * MIN),  # still to come
    )
    rules = MakeUp(
        min_gap=90 * MIN,
        window_ends={date(2026, 1, 14): NOW + 6 * timedelta(hours=1)},
        posted=(NOW - 4 * timedelta(hours=1),),
    )
    decided = schedule_slots([plan], now=NOW, grace=GRACE, done={"d/post/1"}, make_up=rules)
    assert [s.slot_id for s in decided.missed] == ["d/engage/1"]
    made_up = {d.slot.slot_id: d.run_at for d in decided.made_up}
    # Apart from d/post/4 (in an hour) and from each other, in their planned order.
    assert made_up == {"d/post/2": NOW + 150 * MIN, "d/post/3": NOW + 240 * MIN}
    assert all(d.retry for d in decided.made_up)
    # Without room before the window closes, the later one stays missed.
    tight = MakeUp(rules.min_gap, {date(2026, 1, 14): NOW + 4 * timedelta(hours=1)}, rules.posted)
    decided = schedule_slots([plan], now=NOW, grace=GRACE, done={"d/post/1"}, make_up=tight)
    assert [d.slot.slot_id for d in decided.made_up] == ["d/post/2"]
    assert [s.slot_id for s in decided.missed] == ["d/engage/1", "d/post/3"]


# ---------------------------------------------------------------------- the day-plan recipe

OVERNIGHT = Persona(
    name="overnight",
    topics=["harbours"],
    timezone="America/New_York",
    active_hours=("13:00", "04:00"),  # 18:00 to 09:00 UTC in winter: across both midnights
    posts_per_day=4,
    min_post_gap_minutes=60,
    engagement=Engagement(sessions_per_day=3),
)


def _open_day(now: datetime, done: set[str], retries: dict[str, datetime], left: int = 99) -> Any:
    return plan_open_day(
        OVERNIGHT,
        date(2026, 1, 13),
        now=now,
        done=done,
        retries=retries,
        left_at=lambda t: {"posts": left, "generation": left},
        jitter_minutes=20,
        grace_minutes=15,
    )


def test_the_recipe_keeps_ids_and_times_and_hands_on_what_is_still_to_run() -> None:
    full = plan_day(OVERNIGHT, date(2026, 1, 13), posts_allowed=4, jitter_minutes=20)
    first, second = full.posts[0], full.posts[1]
    now = second.at + 20 * MIN
    day = _open_day(now, {first.slot_id}, {second.slot_id: now + 30 * MIN})
    assert day.full == full  # done slots included: a restart finds the same ids and times
    assert day.window == (utc(2026, 1, 13, 18), utc(2026, 1, 14, 9))
    ahead = {s.slot_id: s.at for s in day.ahead.slots}
    assert first.slot_id not in ahead
    assert ahead[second.slot_id] == now + 30 * MIN
    assert all(at >= now - GRACE for at in ahead.values())
    assert {s.slot_id for s in day.schedule.missed} == {
        s.slot_id
        for s in full.slots
        if s.at < now - GRACE and s.slot_id not in {first.slot_id, second.slot_id}
    }


def test_the_recipe_plans_what_the_quota_of_each_utc_day_allows() -> None:
    """The window spans midnight UTC, so its posts spend two UTC days' quotas."""
    before = utc(2026, 1, 13, 12)
    assert len(_open_day(before, set(), {}, left=1).full.posts) == 2
    assert len(_open_day(before, set(), {}, left=2).full.posts) == 4


# ---------------------------------------------------------------------- daemon and simulation


class Recorder:
    """The real ``Agent``'s plans, and a run that always succeeds at once (recorded, and done
    in the ledger as a real run would be): what the daemon or the simulation decided, seen."""

    def __init__(self, agent: Agent, clock: SimulatedClock) -> None:
        self.agent = agent
        self.clock = clock
        self.ran: dict[str, datetime] = {}

    @property
    def persona(self) -> Persona:
        return self.agent.persona

    @property
    def config(self) -> AgentConfig:
        return self.agent.config

    async def startup(self) -> None:
        return None

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        return await self.agent.plan_day(now)

    async def run_slot(self, slot: Slot) -> Outcome:
        self.ran.setdefault(slot.slot_id, self.clock.now())
        await self.agent.ledger.mark_slot_done(slot.slot_id, self.clock.now())
        return Outcome(slot.kind)

    async def heartbeat(self) -> None:
        return None


@dataclass
class Restart:
    """A restart of the overnight persona, 20 minutes after one of yesterday's slots."""

    recorder: Recorder
    clock: SimulatedClock
    ledger: AsyncLedger
    at: datetime  # the restart
    yesterday: DayPlan  # the whole plan of yesterday's local day
    done: str
    slot_20_min_ago: str
    retry_due: str
    retry_stale: str


# Far in the future, so that the daemon's real scheduler never fires a job during the test.
YESTERDAY = date(2100, 1, 13)


async def _restart(state: Path) -> Restart:
    local_midnight = datetime(2100, 1, 14, 5, tzinfo=UTC)  # New York, in winter
    clock = SimulatedClock(local_midnight - timedelta(hours=18))
    config = parse_config({"persona": "p.toml"}, source=state / "agent.toml", env={})
    ledger = await AsyncLedger.open(state, clock=clock)
    nothing: Any = None  # planning needs no Glimpse, image backend or writer
    agent = Agent(
        config,
        OVERNIGHT,
        glimpse=nothing,
        ledger=ledger,
        router=nothing,
        writing=nothing,
        clock=clock,
    )
    await agent.plan_day(clock.now())
    yesterday = agent.days.plans[YESTERDAY.isoformat()]
    # Yesterday's window is still open after local midnight (it closes at 04:00, 09:00 UTC):
    # the restart comes 20 minutes after its first slot past local midnight.
    after_midnight = next(s for s in yesterday.slots if s.at >= local_midnight)
    at = after_midnight.at + 20 * MIN
    posts_before = [s for s in yesterday.posts if s.at < after_midnight.at]
    others_before = [s for s in yesterday.slots if s.at < after_midnight.at and s.kind != "post"]
    assert len(posts_before) >= 2 and others_before, yesterday  # the scenario needs them
    assert any(s.at > at for s in yesterday.slots), yesterday  # and a slot still ahead
    assert any(s.at < datetime(2100, 1, 14, tzinfo=UTC) for s in yesterday.slots)
    clock.set(at)
    await ledger.mark_slot_done(others_before[0].slot_id, others_before[0].at)
    await ledger.plan_retry(posts_before[-1].slot_id, at - 5 * MIN)
    await ledger.plan_retry(posts_before[0].slot_id, at - 60 * MIN)
    return Restart(
        Recorder(agent, clock),
        clock,
        ledger,
        at,
        yesterday,
        done=others_before[0].slot_id,
        slot_20_min_ago=after_midnight.slot_id,
        retry_due=posts_before[-1].slot_id,
        retry_stale=posts_before[0].slot_id,
    )


@pytest.fixture
async def restarts(tmp_path: Path) -> AsyncIterator[tuple[Restart, Restart]]:
    one, two = await _restart(tmp_path / "daemon"), await _restart(tmp_path / "simulation")
    try:
        yield one, two
    finally:
        await one.ledger.aclose()
        await two.ledger.aclose()


def _missed(logs: list[dict[str, Any]]) -> set[str]:
    return {s for e in logs if e["event"] == "slots_missed" for s in e["slots"]}


async def _daemon_decisions(r: Restart, tmp: Path) -> tuple[dict[str, datetime], set[str]]:
    """The daemon's jobs (slot -> when it runs) and missed slots after its start-up plan."""
    daemon = Daemon(
        r.recorder,
        clock=r.clock,
        heartbeat_file=tmp / "heartbeat",
        notifier=SystemdNotifier(""),  # not under systemd, whatever the environment,
        alive_every_seconds=0.05,
    )
    with capture_logs() as logs:
        task = asyncio.create_task(daemon.run())
        for _ in range(250):
            if any(e["event"] == "daemon_ready" for e in logs):
                break
            await asyncio.sleep(0.02)
        jobs = {job: at for job, at in daemon.scheduled if "/" in job}
        daemon.request_stop()
        assert await task == 0
    assert r.recorder.ran == {}  # nothing fired: every job is in 2100
    return jobs, _missed(logs)


async def _simulation_decisions(r: Restart) -> tuple[dict[str, datetime], set[str]]:
    """What the simulation ran (slot -> when) of the two local days planned at the restart,
    and the slots it missed."""
    with capture_logs() as logs:
        await Simulation([r.recorder], r.clock).run(days=2)
    days = (YESTERDAY.isoformat(), (YESTERDAY + timedelta(days=1)).isoformat())
    ran = {s: at for s, at in r.recorder.ran.items() if s.split("/")[0] in days}
    return ran, _missed(logs)


async def test_a_restart_is_scheduled_alike_by_the_daemon_and_the_simulation(
    restarts: tuple[Restart, Restart], tmp_path: Path
) -> None:
    """A restart after local midnight, 20 minutes after a slot of yesterday's window (open
    across midnight UTC until 04:00 local), with a retry due, another whose time passed long
    ago, and today's window to come: the daemon and the simulation run the same slots at the
    same instants and miss the same ones."""
    in_daemon, in_simulation = restarts
    daemon_runs, daemon_missed = await _daemon_decisions(in_daemon, tmp_path)
    sim_runs, sim_missed = await _simulation_decisions(in_simulation)

    assert daemon_runs == sim_runs
    assert daemon_missed == sim_missed

    r = in_daemon
    at = r.at
    assert r.slot_20_min_ago in daemon_missed  # a session more than the grace late
    # A post more than the grace late (its planned or its retry time) is made up later in
    # the window, min_post_gap from the other posts, while there is room: here one is, and
    # the stale retry finds no room left before the window's end.
    made_up = {
        s.slot_id
        for s in r.yesterday.posts
        if s.at < at - GRACE and s.slot_id not in (r.retry_due, r.retry_stale)
    }
    assert made_up and made_up <= set(daemon_runs)
    assert all(daemon_runs[s] > at for s in made_up)
    assert r.retry_stale in daemon_missed
    assert daemon_runs[r.retry_due] == at  # due five minutes ago: runs now
    assert r.done not in daemon_runs and r.done not in daemon_missed
    # Yesterday's slots still ahead run at their time...
    ahead = {s.slot_id: s.at for s in r.yesterday.slots if s.at >= at}
    assert ahead and all(daemon_runs[s] == t for s, t in ahead.items())
    # ...every slot of yesterday is decided exactly once...
    decided = set(daemon_runs) | daemon_missed | {r.done}
    assert {s.slot_id for s in r.yesterday.slots} <= decided
    assert not set(daemon_runs) & daemon_missed
    # ...and today's whole plan (its window opens at 18:00 UTC) runs on time.
    today = [s for s in daemon_runs if s.startswith("2100-01-14/")]
    assert today and all(daemon_runs[s] >= utc(2100, 1, 14, 18) for s in today)
