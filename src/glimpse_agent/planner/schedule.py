"""When each planned slot runs: the one rule the daemon, the simulation and `plan` share.

Given the day plans, the slots already run (``done``), the planned retries, the slots already
pending (a job waiting for its time, or running) and ``now`` with the misfire grace, every slot
gets one decision:

- done: it ran; nothing to do;
- pending: it is already on its way; moving it would run it twice (or before its retry time);
- on time: it runs at its time (the planned time, or the retry time of a retried slot);
- late: its time passed less than ``grace`` ago: it runs now, late slots a millisecond apart in
  their planned order (jobs due at the same instant would otherwise run in the order of their
  ids, "engage/2" before "post/1");
- made up: a post slot whose time (planned or retry) passed more than ``grace`` ago (the
  process was down) is placed again later in its day's active window, ``min_gap`` from every
  other post (done or planned), when ``make_up`` says how (``place_post``);
- missed: its time passed more than ``grace`` ago and it is not (or cannot be) made up: it never
  runs late, and is listed. Engagement sessions are never made up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from glimpse_agent.planner.dayplan import DayPlan, Slot

When = Literal["done", "pending", "on time", "late", "made up", "missed"]

#: Between two late slots that run "now": keeps their planned order in any job queue.
LATE_STEP = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class SlotDecision:
    """What happens to one slot. ``slot.at`` is when it was due (the retry time of a retried
    slot; the new time of a slot made up); ``run_at`` is when it runs, or None when it does not
    (done, pending, missed)."""

    slot: Slot
    when: When
    run_at: datetime | None
    retry: bool = False


@dataclass(frozen=True, slots=True)
class Schedule:
    """Every slot's decision, in planned order (by due time, then slot id)."""

    decisions: tuple[SlotDecision, ...]

    @property
    def runs(self) -> tuple[SlotDecision, ...]:
        """The slots to run (on time or late), in planned order."""
        return tuple(d for d in self.decisions if d.run_at is not None)

    @property
    def missed(self) -> tuple[Slot, ...]:
        return tuple(d.slot for d in self.decisions if d.when == "missed")

    @property
    def made_up(self) -> tuple[SlotDecision, ...]:
        """The post slots placed again later in their window, in planned order."""
        return tuple(d for d in self.decisions if d.when == "made up")

    def decision(self, slot_id: str) -> SlotDecision:
        """The decision on ``slot_id``; KeyError if it is in none of the plans."""
        found = next((d for d in self.decisions if d.slot.slot_id == slot_id), None)
        if found is None:
            raise KeyError(slot_id)
        return found


@dataclass(frozen=True, slots=True)
class MakeUp:
    """How a post slot that cannot run at its time is placed again: before its day's window
    closes (``window_ends``, by local day; a day not listed is never made up), at least
    ``min_gap`` from every other post — the ones made (``posted``, when they went out) and the
    ones still planned."""

    min_gap: timedelta
    window_ends: Mapping[date, datetime]
    posted: tuple[datetime, ...] = field(default=())


def place_post(
    earliest: datetime,
    *,
    window_end: datetime,
    others: Iterable[datetime],
    min_gap: timedelta,
) -> datetime | None:
    """The first instant from ``earliest`` on that is at least ``min_gap`` from every one of
    ``others`` and at least ``min_gap / 2`` before ``window_end`` (the plan's own edge rule, so
    the gap also holds to the next window's first post); None if there is none."""
    at = earliest
    for other in sorted(others):
        if abs(at - other) < min_gap:
            # Past this one; the others before it are further behind, so one pass suffices.
            at = other + min_gap
    return at if at < window_end - min_gap / 2 else None


def schedule_slots(
    plans: Iterable[DayPlan],
    *,
    now: datetime,
    grace: timedelta,
    done: Iterable[str] = (),
    retries: Mapping[str, datetime] | None = None,
    pending: Iterable[str] = (),
    make_up: MakeUp | None = None,
) -> Schedule:
    """Decide when each slot of ``plans`` runs (see the module). ``retries`` maps a slot id to
    the time it runs again; a retry for a slot not in the plans is ignored (its window closed);
    a slot both done and retried is done. With ``make_up``, a post slot more than ``grace``
    late is placed again (``place_post``) rather than missed, in planned order, each kept
    apart from the posts that run (on time or late) and from those placed before it."""
    plans = tuple(plans)
    done_ids, pending_ids = frozenset(done), frozenset(pending)
    again = {k: at for k, at in (retries or {}).items() if k not in done_ids}
    due = [
        Slot(s.slot_id, s.kind, again[s.slot_id]) if s.slot_id in again else s
        for plan in plans
        for s in plan.slots
    ]
    day_of = {s.slot_id: plan.local_day for plan in plans for s in plan.slots}
    decisions = []
    late = 0
    for slot in sorted(due, key=lambda s: (s.at, s.slot_id)):
        retry = slot.slot_id in again
        if slot.slot_id in done_ids:
            decisions.append(SlotDecision(slot, "done", None))
        elif slot.slot_id in pending_ids:
            decisions.append(SlotDecision(slot, "pending", None, retry))
        elif slot.at >= now:
            decisions.append(SlotDecision(slot, "on time", slot.at, retry))
        elif slot.at >= now - grace:
            decisions.append(SlotDecision(slot, "late", now + late * LATE_STEP, retry))
            late += 1
        else:
            decisions.append(SlotDecision(slot, "missed", None, retry))
    if make_up is not None:
        decisions = _make_up(decisions, make_up, day_of, now)
    return Schedule(tuple(sorted(decisions, key=_planned_order)))


def _make_up(
    decisions: list[SlotDecision], rules: MakeUp, day_of: Mapping[str, date], now: datetime
) -> list[SlotDecision]:
    """``decisions`` with each missed post slot placed again where ``rules`` allow."""
    # Where the other posts are: made, on their way (a pending slot at its due time), or
    # running; a placed one joins them, so two slots made up are kept apart too.
    taken = list(rules.posted)
    taken += [
        d.run_at or d.slot.at
        for d in decisions
        if d.slot.kind == "post" and d.when in ("pending", "on time", "late")
    ]
    out = []
    for d in decisions:
        end = rules.window_ends.get(day_of.get(d.slot.slot_id, date.min))
        if d.when != "missed" or d.slot.kind != "post" or end is None:
            out.append(d)
            continue
        at = place_post(now, window_end=end, others=taken, min_gap=rules.min_gap)
        if at is None:
            out.append(d)
            continue
        taken.append(at)
        out.append(SlotDecision(Slot(d.slot.slot_id, d.slot.kind, at), "made up", at, True))
    return out


def _planned_order(d: SlotDecision) -> tuple[datetime, str]:
    return (d.slot.at, d.slot.slot_id)
