"""``DayPlanner``: the agent's side of planning. It reads what the ledger knows of each local
day still open (done slots, planned retries, quota, when our posts went out), has the planner's
one recipe plan it (``plan_open_day``), saves the day's whole plan and the new time of each post
slot made up (missed while the process was down; in the ledger, so a restart keeps it), closes
a missed post slot that no longer fits (``slot_given_up``), and remembers what this process
needs between plans: each day's plan (for the sessions still to come) and the slots a dry run
has "done"."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from glimpse_agent.agent.context import AgentContext
from glimpse_agent.ledger import Ledger
from glimpse_agent.planner import (
    DayPlan,
    OpenDay,
    Slot,
    days_to_plan,
    next_local_midnight,
    plan_open_day,
    post_buckets,
    sessions_remaining,
)

#: How many of our latest posts a made-up slot keeps its gap from.
RECENT_POSTS = 20


class DayPlanner:
    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        #: The whole plan of each local day still open, by day key.
        self.plans: dict[str, DayPlan] = {}
        # Slots a dry run has "done": kept in memory only, so a dry run never marks a slot of
        # the real plan as done in the ledger (a later real run on the same day still posts).
        self.dry_done: set[str] = set()
        #: Slots running right now in this process (``SlotRunner``): a plan made meanwhile
        #: (the midnight one, say) must neither run them again nor call them missed.
        self.running: set[str] = set()

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        """The slots still to run of every local day still open (yesterday's overnight window
        too), each at its time (a retried one at its retry time), and when to plan again.
        Re-planning is idempotent: the same ids and times come back."""
        days = days_to_plan(self.ctx.persona, now)
        self._forget_days_before(days)
        taken = frozenset(self.dry_done | self.running)
        opened = await self.ctx.ledger.run(self._open_days, days, now, taken)
        plans = []
        missed: list[str] = []
        for day in opened:
            self.plans[day.local_day.isoformat()] = day.full
            plans.append(day.ahead)
            missed += [s.slot_id for s in day.schedule.missed]
            for made_up in day.schedule.made_up:
                self.ctx.log.info(
                    "slot_made_up_planned",
                    job=made_up.slot.slot_id,
                    at=made_up.slot.at.isoformat(),
                )
        for slot_id in missed:
            if "/post/" in slot_id and not self.ctx.dry_run:
                # Missed with no room left to make it up: the slot ends here, once.
                self.ctx.log.warning(
                    "slot_given_up",
                    job=slot_id,
                    reason="missed while the agent was down; no room left in the active window",
                )
        if missed:
            # More than the misfire grace late: never run late. Expected after a restart (the
            # process was down), hence info; the daemon warns of a slot that went stale in its
            # own hands.
            self.ctx.log.info(
                "slots_missed",
                slots=missed,
                grace_minutes=self.ctx.config.daemon.misfire_grace_minutes,
            )
        return plans, next_local_midnight(self.ctx.persona, now)

    def _open_days(
        self, ledger: Ledger, days: tuple[date, ...], now: datetime, taken: frozenset[str]
    ) -> list[OpenDay]:
        """Each day planned from the ledger, and its whole plan saved (on the ledger's thread:
        the recipe asks the quota for one instant per candidate post total). ``taken``: slots
        this process has in hand (a dry run's, or running now), planned as done."""
        persona, daemon = self.ctx.persona, self.ctx.config.daemon
        posted = tuple(p.created_at for p in ledger.recent_posts(RECENT_POSTS))
        opened = []
        for local_day in days:
            key = local_day.isoformat()
            day = plan_open_day(
                persona,
                local_day,
                now=now,
                done=[*ledger.done_slots(key), *(s for s in taken if s.startswith(f"{key}/"))],
                retries={s: at for s, (at, _) in ledger.planned_retries(key).items()},
                left_at=lambda t: ledger.remaining_all(t, persona),
                jitter_minutes=daemon.jitter_minutes,
                grace_minutes=daemon.misfire_grace_minutes,
                posted=posted,
                buckets=post_buckets(self.ctx.config.images.order or ()),
            )
            ledger.save_plan(key, _plan_json(day.full))
            if not self.ctx.dry_run:
                for made_up in day.schedule.made_up:
                    ledger.plan_retry(made_up.slot.slot_id, made_up.slot.at, why="missed")
                for slot in day.schedule.missed:
                    if slot.kind == "post":
                        ledger.mark_slot_done(slot.slot_id, now, outcome="given up: missed")
            opened.append(day)
        return opened

    def sessions_left(self, slot: Slot) -> int:
        """Engagement sessions left in ``slot``'s day counting this one (so at least 1)."""
        plan = self.plans.get(slot.slot_id.split("/")[0])
        return sessions_remaining(plan, self.ctx.clock.now()) if plan else 1

    def _forget_days_before(self, days: tuple[date, ...]) -> None:
        """Drop what this process remembers about local days no longer planned (their windows
        have closed), so a daemon that runs for months does not grow a little every day."""
        keep = {d.isoformat() for d in days}

        def current(slot_id: str) -> bool:
            return slot_id.split("/")[0] in keep

        self.plans = {k: v for k, v in self.plans.items() if k in keep}
        self.dry_done = {s for s in self.dry_done if current(s)}


def _plan_json(plan: DayPlan) -> dict[str, Any]:
    return {
        "local_day": plan.local_day.isoformat(),
        "slots": [
            {"slot_id": s.slot_id, "kind": s.kind, "at": s.at.isoformat()} for s in plan.slots
        ],
    }
