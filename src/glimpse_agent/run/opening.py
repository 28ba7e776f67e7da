"""The agent as the daemon sees it: opened (ledger lock, read, repair) as the first step of the
daemon's start-up rather than before it. Shared by `run -c` and by each member of a fleet."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from glimpse_agent.clock import Clock
from glimpse_agent.config import LoadedAgent
from glimpse_agent.errors import StateUnwritable
from glimpse_agent.ledger import Ledger
from glimpse_agent.planner import DayPlan, Slot
from glimpse_agent.run.assemble import Runtime
from glimpse_agent.run.statedir import PERMISSION_ERRNOS, permission_denied


class OpeningAgent:
    """The agent, opened (ledger lock, read, repair) as the first step of the daemon's start-up
    rather than before it: a state directory that is full or read-only at a restart is then
    waited for by the daemon, which tells systemd so, instead of ending the process."""

    def __init__(self, loaded: LoadedAgent, opener: Callable[[], Awaitable[Runtime]]) -> None:
        self._loaded = loaded
        self._opener = opener
        self.runtime: Runtime | None = None

    async def open(self) -> None:
        if self.runtime is not None:
            return
        try:
            self.runtime = await self._opener()
        except StateUnwritable as exc:
            if exc.errno in PERMISSION_ERRNOS:
                config = self._loaded.config
                raise permission_denied(config.state_dir, config_file=config.source) from exc
            raise

    async def startup(self) -> None:
        await self._agent().start()

    def _agent(self) -> Runtime:
        assert self.runtime is not None, "the daemon opens the state first"
        return self.runtime

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        return await self._agent().agent.plan_day(now)

    async def run_slot(self, slot: Slot) -> object:
        return await self._agent().agent.run_slot(slot)

    async def heartbeat(self) -> None:
        await self._agent().agent.heartbeat()

    async def ledger_view(self, clock: Clock) -> dict[str, Any] | None:
        """The ledger's status view, or None before the ledger is open."""
        if self.runtime is None:
            return None
        return await self.runtime.ledger.run(Ledger.status_view, clock.now(), self._loaded.persona)
