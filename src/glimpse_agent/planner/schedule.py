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
- missed: its time passed more than ``grace`` ago (yesterday's, or while the process was down):
  it never runs late, and is listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from glimpse_agent.planner.dayplan import DayPlan, Slot

When = Literal["done", "pending", "on time", "late", "missed"]

#: Between two late slots that run "now": keeps their planned order in any job queue.
LATE_STEP = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class SlotDecision:
    """What happens to one slot. ``slot.at`` is when it was due (the retry time of a retried
    slot); ``run_at`` is when it runs, or None when it does not (done, pending, missed)."""

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

    def decision(self, slot_id: str) -> SlotDecision:
        """The decision on ``slot_id``; KeyError if it is in none of the plans."""
        found = next((d for d in self.decisions if d.slot.slot_id == slot_id), None)
        if found is None:
            raise KeyError(slot_id)
        return found


def schedule_slots(
    plans: Iterable[DayPlan],
    *,
    now: datetime,
    grace: timedelta,
    done: Iterable[str] = (),
    retries: Mapping[str, datetime] | None = None,
    pending: Iterable[str] = (),
) -> Schedule:
    """Decide when each slot of ``plans`` runs (see the module). ``retries`` maps a slot id to
    the time it runs again; a retry for a slot not in the plans is ignored (its window closed);
    a slot both done and retried is done."""
    done_ids, pending_ids = frozenset(done), frozenset(pending)
    again = {k: at for k, at in (retries or {}).items() if k not in done_ids}
    due = [
        Slot(s.slot_id, s.kind, again[s.slot_id]) if s.slot_id in again else s
        for plan in plans
        for s in plan.slots
    ]
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
    return Schedule(tuple(decisions))
