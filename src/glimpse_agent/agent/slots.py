"""``SlotRunner``: runs one planned slot once — as a post or an engagement session — and
records it as done.

A post that failed for a passing reason (an outage, a 429, an answer that never came and must
first be found or ruled out) is placed again later in the same active window, spaced like the
plan (``planner.place_post``: ``min_post_gap`` from our other posts, made or planned), for as
long as the window and the quota allow; the new time is in the ledger, so a restart keeps it.
Each post slot ends with ONE event: ``slot_posted`` (at its time), ``slot_made_up`` (posted
later than planned: retried or made up after a restart) or ``slot_given_up`` (with why).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from glimpse_agent.agent.context import AgentContext
from glimpse_agent.agent.days import DayPlanner
from glimpse_agent.agent.engaging import Engager
from glimpse_agent.agent.outcome import Outcome
from glimpse_agent.agent.posting import Poster
from glimpse_agent.planner import Slot, active_window, place_post

#: A safety net, not a plan: how often one post slot may be placed again in one window. The
#: window's end is what normally ends a slot; a Glimpse that cannot be asked is asked again
#: every five minutes, so a long outage comes to a few dozen placements.
MAX_PLACEMENTS = 300
#: How many of our latest posts a new placement keeps its gap from.
RECENT_POSTS = 20


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
        self.days.running.add(slot.slot_id)
        try:
            return await self._run_slot(slot)
        finally:
            self.days.running.discard(slot.slot_id)

    async def _run_slot(self, slot: Slot) -> Outcome:
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
            return await self._post(slot)
        outcome = await self._engage(slot)
        await ctx.ledger.mark_slot_done(
            slot.slot_id, ctx.clock.now(), outcome="ok" if outcome.ok else outcome.detail[:200]
        )
        return outcome

    async def _post(self, slot: Slot) -> Outcome:
        ctx = self.ctx
        day_key = slot.slot_id.split("/")[0]
        moved = (await ctx.ledger.planned_retries(day_key)).get(slot.slot_id)
        why = (await ctx.ledger.retry_reasons(day_key)).get(slot.slot_id, "")
        outcome = await self.poster.post(slot.slot_id)
        if outcome.ok:
            # Its post (with the slot id) marks the slot done; say how the slot ended.
            if moved is None:
                ctx.log.info("slot_posted", job=slot.slot_id, post_id=outcome.post_id)
            else:
                ctx.log.info(
                    "slot_made_up",
                    job=slot.slot_id,
                    post_id=outcome.post_id,
                    placements=moved[1],
                    why=why,
                    detail=outcome.detail or None,
                )
            if not await ctx.ledger.slot_done(slot.slot_id):
                await ctx.ledger.mark_slot_done(slot.slot_id, ctx.clock.now(), outcome="ok")
            return outcome
        reason = await self._place_again(slot, outcome, moved[1] if moved else 0)
        if reason is None:
            return outcome
        # A failed post's slot is done too: re-running it after a restart could post at an
        # unplanned hour; the next slot (or tomorrow) posts again.
        await ctx.ledger.mark_slot_done(
            slot.slot_id, ctx.clock.now(), outcome=f"given up: {reason}"[:200]
        )
        ctx.log.warning("slot_given_up", job=slot.slot_id, reason=reason[:300])
        return outcome

    async def _engage(self, slot: Slot) -> Outcome:
        return await self.engager.engage(slot.slot_id, sessions_left=self.days.sessions_left(slot))

    async def _place_again(self, slot: Slot, outcome: Outcome, placements: int) -> str | None:
        """Place a post that failed for a passing reason (and surely did not post, or will be
        looked for first) later in its active window, spaced like the plan. Sets
        ``outcome.retry_at`` and returns None if it was placed; else why the slot ends."""
        if outcome.retry_after is None:
            return outcome.detail or "failed"
        try:
            local_day = date.fromisoformat(slot.slot_id.split("/")[0])
        except ValueError:  # not a planned slot ("adhoc/..."): nothing to come back to
            return outcome.detail or "failed"
        if placements >= MAX_PLACEMENTS:
            return f"{outcome.detail} (placed again {placements} times already)"
        ctx = self.ctx
        now = ctx.clock.now()
        earliest = now + timedelta(seconds=max(outcome.retry_after, 60.0))
        _, window_end = active_window(ctx.persona, local_day)
        at = place_post(
            earliest,
            window_end=window_end,
            others=await self._other_posts(slot, local_day),
            min_gap=timedelta(minutes=ctx.persona.min_post_gap_minutes),
        )
        if at is None:
            return f"{outcome.detail} (no room left in the active window)"
        placed = await ctx.ledger.plan_retry(slot.slot_id, at, why="failed")
        outcome.retry_at = at
        ctx.log.warning(
            "slot_retry_planned",
            job=slot.slot_id,
            attempt=placed,
            at=at.isoformat(),
            reason=outcome.detail[:200],
        )
        return None

    async def _other_posts(self, slot: Slot, local_day: date) -> list[datetime]:
        """When our other posts are: the latest ones made, and the day's post slots still to
        run (at their retry time if they have one)."""
        ledger = self.ctx.ledger
        key = local_day.isoformat()
        times = [p.created_at for p in await ledger.recent_posts(RECENT_POSTS)]
        plan = self.days.plans.get(key)
        if plan is not None:
            done = set(await ledger.done_slots(key))
            retries = await ledger.planned_retries(key)
            times += [
                retries[s.slot_id][0] if s.slot_id in retries else s.at
                for s in plan.posts
                if s.slot_id != slot.slot_id and s.slot_id not in done
            ]
        return times
