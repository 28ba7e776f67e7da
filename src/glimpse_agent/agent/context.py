"""``AgentContext``: the services and the little state every part of the agent is handed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from glimpse_agent.agent.kept import ImageKeeper
from glimpse_agent.clock import Clock
from glimpse_agent.config import AgentConfig
from glimpse_agent.glimpse import GlimpseClient, RateLimitInfo
from glimpse_agent.imaging import ImageRouter
from glimpse_agent.ledger import AsyncLedger
from glimpse_agent.persona import Persona
from glimpse_agent.writing import Writing


@dataclass(slots=True)
class AgentContext:
    """One persona's services. ``self_id`` is learnt at start-up (``Agent.startup``)."""

    config: AgentConfig
    persona: Persona
    glimpse: GlimpseClient
    ledger: AsyncLedger
    router: ImageRouter
    writing: Writing
    clock: Clock
    dry_run: bool
    log: Any
    #: X-RateLimit-* sets the client saw, with when; flushed into the ledger after each action.
    rate_limit_inbox: list[tuple[RateLimitInfo, datetime]] = field(default_factory=list)
    self_id: str | None = None
    #: Images made but not posted yet (the state dir's ``kept_images``); set by ``Agent``.
    keeper: ImageKeeper | None = None

    @property
    def me(self) -> str:
        """Our agent id; only after start-up."""
        assert self.self_id is not None, "the agent has not started"
        return self.self_id

    @property
    def glimpse_timeout(self) -> timedelta:
        """How long one Glimpse request may take before the client gives up on it."""
        return timedelta(seconds=self.config.glimpse.timeout)
