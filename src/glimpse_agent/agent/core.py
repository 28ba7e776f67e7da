"""``Agent``: one persona's hands. It starts (who am I; settle what a crash left), plans the
day, and runs each planned slot once, as a post (``Posting``) or an engagement session
(``Engaging``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from glimpse_agent.agent._base import Outcome, settle_engagement
from glimpse_agent.agent.engaging import Engaging
from glimpse_agent.agent.posting import Posting, find_post, match_time
from glimpse_agent.clock import Clock
from glimpse_agent.config import AgentConfig
from glimpse_agent.errors import ServiceError
from glimpse_agent.glimpse import GlimpseClient, Post, RateLimitInfo
from glimpse_agent.imaging import ImageRouter
from glimpse_agent.ledger import AsyncLedger
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
        # Retries planned per post slot in this process (a restart re-runs a slot that is not
        # done if it is still within the misfire grace, else counts it missed).
        self._retries: dict[str, int] = {}
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
            allowed = await self._posts_that_fit(
                local_day, now, frozenset(done), posts_allowed(self.persona, posted, left)
            )
            full = plan_day(
                self.persona,
                local_day,
                posts_allowed=allowed,
                jitter_minutes=self.config.daemon.jitter_minutes,
            )
            self._plans[key] = full
            await self.ledger.save_plan(key, _plan_json(full))
            plans.append(
                plan_day(
                    self.persona,
                    local_day,
                    posts_allowed=allowed,
                    jitter_minutes=self.config.daemon.jitter_minutes,
                    done_slot_ids=frozenset(done),
                    now=now,
                    grace_minutes=self.config.daemon.misfire_grace_minutes,
                )
            )
        return plans, next_local_midnight(self.persona, now)

    def _forget_days_before(self, days: tuple[date, ...]) -> None:
        """Drop what this process remembers about local days no longer planned (their windows
        have closed), so a daemon that runs for months does not grow a little every day."""
        keep = {d.isoformat() for d in days}

        def current(slot_id: str) -> bool:
            return slot_id.split("/")[0] in keep

        self._plans = {k: v for k, v in self._plans.items() if k in keep}
        self._retries = {k: v for k, v in self._retries.items() if current(k)}
        self._dry_done = {s for s in self._dry_done if current(s)}

    async def _posts_that_fit(
        self, local_day: date, now: datetime, done: frozenset[str], floor: int
    ) -> int:
        """The largest day total (at most ``posts_per_day``, at least ``floor``) whose pending
        post slots fit the posts and generation quotas of each UTC day they fall on. A window
        that spans midnight UTC spends two UTC days' quotas: judging it only by the quota left
        when it opens plans too few posts whenever the previous window's late posts used part
        of that UTC day."""
        for n in range(self.persona.posts_per_day, floor, -1):
            plan = plan_day(
                self.persona,
                local_day,
                posts_allowed=n,
                jitter_minutes=self.config.daemon.jitter_minutes,
            )
            by_day: dict[date, list[datetime]] = {}
            for s in plan.posts:
                if s.slot_id not in done:
                    by_day.setdefault(s.at.astimezone(UTC).date(), []).append(s.at)
            fits = True
            for times in by_day.values():
                left = await self.budgets(max(now, min(times)))
                if len(times) > min(left.get("posts", 0), left.get("generation", 0)):
                    fits = False
                    break
            if fits:
                return n
        return floor

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
        should not cost the day a post. Sets ``outcome.retry_at``; False if no retry fits."""
        if outcome.retry_after is None or self._retries.get(slot.slot_id, 0) >= SLOT_RETRIES:
            return False
        try:
            local_day = date.fromisoformat(slot.slot_id.split("/")[0])
        except ValueError:  # not a planned slot ("adhoc/..."): nothing to come back to
            return False
        at = self.clock.now() + timedelta(seconds=max(outcome.retry_after, 60.0))
        _, window_end = active_window(self.persona, local_day)
        if at >= window_end:
            return False
        self._retries[slot.slot_id] = self._retries.get(slot.slot_id, 0) + 1
        outcome.retry_at = at
        self.log.warning(
            "slot_retry_planned",
            job=slot.slot_id,
            attempt=self._retries[slot.slot_id],
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
