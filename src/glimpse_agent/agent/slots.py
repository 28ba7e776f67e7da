"""``SlotRunner``: runs one planned slot once — as a post or an engagement session — and
records it as done; a post that failed for a passing reason gets a retry later the same
window instead (kept in the ledger, so a restart keeps it)."""

from __future__ import annotations

from datetime import date, timedelta

from glimpse_agent.agent.context import AgentContext
from glimpse_agent.agent.days import DayPlanner
from glimpse_agent.agent.engaging import Engager
from glimpse_agent.agent.outcome import Outcome
from glimpse_agent.agent.posting import Poster
from glimpse_agent.planner import Slot, active_window

#: How often one post slot is tried again after a failure that waiting may fix.
SLOT_RETRIES = 2


class SlotRunner:
    def __init__(
        self, ctx: AgentContext, days: DayPlanner, poster: Poster, engager: Engager
    ) -> None:
        self.ctx = ctx
        self.days = days
        self.poster = poster
        self.engager = engager

    async def run_slot(self, slot: Slot) -> Outcome:
        """Run one planned slot unless it already ran (restart) — then record it as done."""
        ctx = self.ctx
        log = ctx.log.bind(job=slot.slot_id, action=slot.kind)
        if slot.slot_id in self.days.dry_done or await ctx.ledger.slot_done(slot.slot_id):
            log.info("slot_already_done")
            return Outcome(slot.kind, True, "already done")
        if ctx.dry_run:
            self.days.dry_done.add(slot.slot_id)
            return await (
                self.poster.post(slot.slot_id) if slot.kind == "post" else self._engage(slot)
            )
        if slot.kind == "post":
            outcome = await self.poster.post(slot.slot_id)
            if not outcome.ok and await self._plan_retry(slot, outcome):
                return outcome
        else:
            outcome = await self._engage(slot)
        if not outcome.ok or slot.kind == "engage":
            # A failed post's slot is done too: the next slot (or tomorrow) tries again; re-running
            # a failed slot after a restart could post at an unplanned hour.
            await ctx.ledger.mark_slot_done(
                slot.slot_id, ctx.clock.now(), outcome="ok" if outcome.ok else outcome.detail[:200]
            )
        return outcome

    async def _engage(self, slot: Slot) -> Outcome:
        return await self.engager.engage(slot.slot_id, sessions_left=self.days.sessions_left(slot))

    async def _plan_retry(self, slot: Slot, outcome: Outcome) -> bool:
        """Give a post that failed for a passing reason (and surely did not post) another try
        later the same active window, at most ``SLOT_RETRIES`` times: an hour-long outage
        should not cost the day a post. The retry is in the ledger, so a restart keeps it.
        Sets ``outcome.retry_at``; False if no retry fits."""
        if outcome.retry_after is None:
            return False
        day_key = slot.slot_id.split("/")[0]
        try:
            local_day = date.fromisoformat(day_key)
        except ValueError:  # not a planned slot ("adhoc/..."): nothing to come back to
            return False
        ledger = self.ctx.ledger
        _, tries = (await ledger.planned_retries(day_key)).get(slot.slot_id, (None, 0))
        at = self.ctx.clock.now() + timedelta(seconds=max(outcome.retry_after, 60.0))
        _, window_end = active_window(self.ctx.persona, local_day)
        if tries >= SLOT_RETRIES or at >= window_end:
            return False
        attempt = await ledger.plan_retry(slot.slot_id, at)
        outcome.retry_at = at
        self.ctx.log.warning(
            "slot_retry_planned",
            job=slot.slot_id,
            attempt=attempt,
            at=at.isoformat(),
            reason=outcome.detail[:200],
        )
        return True
