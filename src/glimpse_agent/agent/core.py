"""``Agent``: one persona's hands, put together from parts with one job each — the day
planner, the slot runner, the poster, the engager, the reconciler and the quota — all handed
one ``AgentContext``. It starts (who am I; settle what a crash left), plans the day, and runs
each planned slot once, as a post or an engagement session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from glimpse_agent.agent.context import AgentContext
from glimpse_agent.agent.days import DayPlanner
from glimpse_agent.agent.engaging import Engager
from glimpse_agent.agent.kept import ImageKeeper
from glimpse_agent.agent.outcome import Outcome
from glimpse_agent.agent.posting import Poster
from glimpse_agent.agent.quota import Quota
from glimpse_agent.agent.reconcile import Reconciler
from glimpse_agent.agent.slots import SlotRunner
from glimpse_agent.clock import Clock
from glimpse_agent.config import AgentConfig
from glimpse_agent.errors import ServiceError
from glimpse_agent.glimpse import GlimpseClient, RateLimitInfo
from glimpse_agent.imaging import ImageRouter
from glimpse_agent.ledger import AsyncLedger
from glimpse_agent.logs import get_logger
from glimpse_agent.persona import Persona
from glimpse_agent.planner import DayPlan, Slot
from glimpse_agent.writing import Writing


class Agent:
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
        self.context = AgentContext(
            config=config,
            persona=persona,
            glimpse=glimpse,
            ledger=ledger,
            router=router,
            writing=writing,
            clock=clock,
            dry_run=dry_run,
            log=get_logger("glimpse_agent.agent", persona=persona.name),
            # The very list the Glimpse client appends to: not a copy.
            rate_limit_inbox=rate_limit_inbox if rate_limit_inbox is not None else [],
            keeper=ImageKeeper(config.state_dir, clock),
        )
        self.quota = Quota(self.context)
        self.reconciler = Reconciler(self.context)
        self.poster = Poster(self.context, self.quota, self.reconciler)
        self.engager = Engager(self.context, self.quota)
        self.days = DayPlanner(self.context)
        self.slots = SlotRunner(self.context, self.days, self.poster, self.engager)

    # ------------------------------------------------------------------ what the others read
    # (the rest of the context is ``context``)

    @property
    def config(self) -> AgentConfig:
        return self.context.config

    @property
    def persona(self) -> Persona:
        return self.context.persona

    @property
    def ledger(self) -> AsyncLedger:
        return self.context.ledger

    @property
    def router(self) -> ImageRouter:
        return self.context.router

    @property
    def log(self) -> Any:
        return self.context.log

    @property
    def self_id(self) -> str | None:
        """Our agent id on Glimpse, once started."""
        return self.context.self_id

    # ------------------------------------------------------------------ lifecycle

    async def startup(self) -> None:
        """Learn who we are, then settle whatever a crash left half-done — before anything else."""
        me = await self.context.glimpse.me()
        self.context.self_id = me.id
        settled = await self.reconcile()
        self.log.info(
            "agent_started", agent_id=me.id, reconciled=settled, dry_run=self.context.dry_run
        )

    async def reconcile(self, *, abandon_missing: bool = True) -> int:
        """Settle every unsettled intent against Glimpse (see ``Reconciler``): how many were
        closed. A post intent Glimpse may still be applying stays open."""
        return (await self.reconciler.reconcile(abandon_missing=abandon_missing)).settled

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        """The slots still to run of every local day still open, and when to plan again."""
        return await self.days.plan_day(now)

    async def run_slot(self, slot: Slot) -> Outcome:
        """Run one planned slot unless it already ran (see ``SlotRunner``)."""
        return await self.slots.run_slot(slot)

    async def post(self, slot_id: str | None = None) -> Outcome:
        """Make and publish one post (see ``Poster``)."""
        return await self.poster.post(slot_id)

    async def engage(self, slot_id: str | None = None, *, sessions_left: int = 1) -> Outcome:
        """One engagement session (see ``Engager``)."""
        return await self.engager.engage(slot_id, sessions_left=sessions_left)

    async def budgets(self, now: datetime) -> dict[str, int]:
        """What is left in every bucket at ``now``."""
        return await self.quota.left(now)

    async def heartbeat(self) -> None:
        if self.context.dry_run:
            return
        try:
            await self.context.glimpse.heartbeat()
        except ServiceError as exc:
            self.log.warning("heartbeat_failed", error=str(exc))
        await self.quota.flush_server_limits()
