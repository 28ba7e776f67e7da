"""``Agent``: one persona's hands. It starts (who am I; settle what a crash left), plans the
day, and runs each planned slot once, as a post (``Posting``) or an engagement session
(``Engaging``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from glimpse_agent.agent._base import Outcome, settle_engagement
from glimpse_agent.agent.engaging import Engaging
from glimpse_agent.agent.posting import Posting, find_post, match_time
from glimpse_agent.clock import Clock
from glimpse_agent.config import AgentConfig
from glimpse_agent.errors import ServiceError
from glimpse_agent.glimpse import GlimpseClient, Post, RateLimitInfo
from glimpse_agent.imaging import ImageRouter
from glimpse_agent.ledger import AsyncLedger, Ledger
from glimpse_agent.logs import get_logger
from glimpse_agent.persona import Persona
from glimpse_agent.planner import (
    DayPlan,
    Slot,
    active_window,
    days_to_plan,
    next_local_midnight,
    plan_day,
    posts_allowed,
    posts_that_fit,
    sessions_remaining,
)
from glimpse_agent.writing import Writing

#: How often one post slot is tried again after a failure that waiting may fix.
SLOT_RETRIES = 2


class Agent(Posting, Engaging):
    """One persona's hands: it does what the planner decided, within what the ledger allows."""

    def __init__(
        self,
        config: AgentConfig,
        persona: Persona,
        *,
        glimpse: GlimpseClient,
        ledger: AsyncLedger,
        router: ImageRouter,
        writing: Writing,
        clock: Clock,
        dry_run: bool = False,
        rate_limit_inbox: list[tuple[RateLimitInfo, datetime]] | None = None,
    ) -> None:
        self.config = config
        self.persona = persona
        self.glimpse = glimpse
        self.ledger = ledger
        self.router = router
        self.writing = writing
        self.clock = clock
        self.dry_run = dry_run
        self.self_id: str | None = None
        self._plans: dict[str, DayPlan] = {}
        # Slots a dry run has "done": kept in memory only, so a dry run never marks a slot of
        # the real plan as done in the ledger (a later real run on the same day still posts).
        self._dry_done: set[str] = set()
        # X-RateLimit-* sets the client saw, with when; flushed into the ledger after each action.
        self._limits_inbox = rate_limit_inbox if rate_limit_inbox is not None else []
        self.log = get_logger("glimpse_agent.agent", persona=persona.name)

    # ------------------------------------------------------------------ lifecycle

    async def startup(self) -> None:
        """Learn who we are, then settle whatever a crash left half-done — before anything else."""
        me = await self.glimpse.me()
        self.self_id = me.id
        settled = await self.reconcile()
        self.log.info("agent_started", agent_id=me.id, reconciled=settled, dry_run=self.dry_run)

    async def reconcile(self, *, abandon_missing: bool = True) -> int:
        """Settle every unsettled intent against Glimpse. Returns how many were settled.
        ``abandon_missing=False`` keeps the intent of a post not (yet) on Glimpse open: right
        after a timeout the request may still be in flight, so only a later start may give up."""
        intents = await self.ledger.unsettled_intents()
        if not intents:
            return 0
        assert self.self_id is not None
        recent: list[Post] | None = None
        for intent in intents:
            payload = intent.payload
            if intent.kind == "post":
                if recent is None:
                    recent = list((await self.glimpse.agent_posts(self.self_id, limit=40)).items)
                match = find_post(recent, payload)
                if match is not None:
                    await self._commit_post(
                        intent.intent_id,
                        match,
                        payload,
                        at=match_time(match, intent.at),
                        reconciled=True,
                    )
                    self.log.warning(
                        "reconciled_post_found", intent=intent.intent_id, post_id=match.id
                    )
                elif not abandon_missing:
                    self.log.warning("reconcile_post_pending", intent=intent.intent_id)
                else:
                    await self.ledger.abandon_intent(intent.intent_id, "not found on Glimpse")
                    self.log.warning("reconciled_post_absent", intent=intent.intent_id)
            else:
                # Likes/follows/comments: the server may or may not have them. Count them as
                # done (spent quota, engaged target) — over-counting one like is harmless, doing
                # it twice is what we promise never to do.
                await self.ledger.run(
                    settle_engagement,
                    intent.intent_id,
                    intent.kind,
                    str(payload.get("target", "")),
                    payload.get("counterpart"),
                    str(payload.get("bucket", "")),
                    intent.at,
                    {"reconciled": "assumed"},
                )
        return len(intents)

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        """Plans for every local day with slots still ahead (yesterday's overnight window too),
        and when to plan again. Re-planning is idempotent: the same ids and times come back."""
        plans = []
        days = days_to_plan(self.persona, now)
        self._forget_days_before(days)
        for local_day in days:
            key = local_day.isoformat()
            done = await self.ledger.done_slots(key)
            done += sorted(s for s in self._dry_done if s.startswith(f"{key}/"))
            posted = sum(1 for s in done if "/post/" in s)
            # Quota as it will stand when the day's window opens: daily caps reset at midnight
            # UTC, which for most zones is not the local midnight we plan at.
            window_start, _ = active_window(self.persona, local_day)
            left = await self.budgets(max(now, window_start))
            # The day's total including what is done, so slot ids stay stable across restarts.
            allowed = await self.ledger.run(
                _posts_that_fit,
                self.persona,
                local_day,
                now,
                frozenset(done),
                posts_allowed(self.persona, posted, left),
                self.config.daemon.jitter_minutes,
            )
            full = plan_day(
                self.persona,
                local_day,
                posts_allowed=allowed,
                jitter_minutes=self.config.daemon.jitter_minutes,
            )
            self._plans[key] = full
            await self.ledger.save_plan(key, _plan_json(full))
            retries = await self.ledger.planned_retries(key)
            ahead = plan_day(
                self.persona,
                local_day,
                posts_allowed=allowed,
                jitter_minutes=self.config.daemon.jitter_minutes,
                done_slot_ids=frozenset([*done, *retries]),
                now=now,
                grace_minutes=self.config.daemon.misfire_grace_minutes,
            )
            plans.append(_with_retries(ahead, full, retries))
        return plans, next_local_midnight(self.persona, now)

    def _forget_days_before(self, days: tuple[date, ...]) -> None:
        """Drop what this process remembers about local days no longer planned (their windows
        have closed), so a daemon that runs for months does not grow a little every day."""
        keep = {d.isoformat() for d in days}

        def current(slot_id: str) -> bool:
            return slot_id.split("/")[0] in keep

        self._plans = {k: v for k, v in self._plans.items() if k in keep}
        self._dry_done = {s for s in self._dry_done if current(s)}

    async def run_slot(self, slot: Slot) -> Outcome:
        """Run one planned slot unless it already ran (restart) — then record it as done."""
        log = self.log.bind(job=slot.slot_id, action=slot.kind)
        if slot.slot_id in self._dry_done or await self.ledger.slot_done(slot.slot_id):
            log.info("slot_already_done")
            return Outcome(slot.kind, True, "already done")
        if self.dry_run:
            self._dry_done.add(slot.slot_id)
            return await (
                self.post(slot.slot_id) if slot.kind == "post" else self._engage_slot(slot)
            )
        if slot.kind == "post":
            outcome = await self.post(slot.slot_id)
            if not outcome.ok and await self._plan_retry(slot, outcome):
                return outcome
        else:
            outcome = await self._engage_slot(slot)
        if not outcome.ok or slot.kind == "engage":
            # A failed post's slot is done too: the next slot (or tomorrow) tries again; re-running
            # a failed slot after a restart could post at an unplanned hour.
            await self.ledger.mark_slot_done(
                slot.slot_id, self.clock.now(), outcome="ok" if outcome.ok else outcome.detail[:200]
            )
        return outcome

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
        _, tries = (await self.ledger.planned_retries(day_key)).get(slot.slot_id, (None, 0))
        at = self.clock.now() + timedelta(seconds=max(outcome.retry_after, 60.0))
        _, window_end = active_window(self.persona, local_day)
        if tries >= SLOT_RETRIES or at >= window_end:
            return False
        attempt = await self.ledger.plan_retry(slot.slot_id, at)
        outcome.retry_at = at
        self.log.warning(
            "slot_retry_planned",
            job=slot.slot_id,
            attempt=attempt,
            at=at.isoformat(),
            reason=outcome.detail[:200],
        )
        return True

    async def _engage_slot(self, slot: Slot) -> Outcome:
        plan = self._plans.get(slot.slot_id.split("/")[0])
        left = sessions_remaining(plan, self.clock.now()) if plan else 1
        return await self.engage(slot.slot_id, sessions_left=left)

    # ------------------------------------------------------------------ upkeep

    async def heartbeat(self) -> None:
        if self.dry_run:
            return
        try:
            await self.glimpse.heartbeat()
        except ServiceError as exc:
            self.log.warning("heartbeat_failed", error=str(exc))
        await self._flush_limits()


def _plan_json(plan: DayPlan) -> dict[str, Any]:
    return {
        "local_day": plan.local_day.isoformat(),
        "slots": [
            {"slot_id": s.slot_id, "kind": s.kind, "at": s.at.isoformat()} for s in plan.slots
        ],
    }


def _with_retries(
    ahead: DayPlan, full: DayPlan, retries: dict[str, tuple[datetime, int]]
) -> DayPlan:
    """``ahead`` plus each slot waiting for a retry, at its retry time (the daemon runs a late
    one at once; a retry from a closed window is not in ``full`` any more)."""
    by_id = {s.slot_id: s for s in full.slots}
    extra = [
        Slot(slot_id, by_id[slot_id].kind, at)
        for slot_id, (at, _) in retries.items()
        if slot_id in by_id
    ]
    slots = sorted([*ahead.slots, *extra], key=lambda s: s.at)
    return DayPlan(ahead.local_day, tuple(slots))


def _posts_that_fit(
    ledger: Ledger,
    persona: Persona,
    local_day: date,
    now: datetime,
    done: frozenset[str],
    floor: int,
    jitter_minutes: float,
) -> int:
    """``posts_that_fit`` against the ledger (run on its thread: one read per candidate)."""
    return posts_that_fit(
        persona,
        local_day,
        done=done,
        floor=floor,
        left_at=lambda t: ledger.remaining_all(max(now, t), persona),
        jitter_minutes=jitter_minutes,
    )
