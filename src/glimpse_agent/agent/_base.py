"""What the agent's parts share: the ``Outcome`` of an action, the services and state every
part reaches through ``self`` (set by ``Agent.__init__``), and the upkeep every action ends with:
the budgets left, a failure noted, the server's rate-limit headers folded into the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from glimpse_agent.clock import Clock
from glimpse_agent.config import AgentConfig
from glimpse_agent.errors import RateLimited, ServiceError
from glimpse_agent.glimpse import GlimpseClient, RateLimitInfo
from glimpse_agent.imaging import ImageRouter
from glimpse_agent.ledger import AsyncLedger, Ledger
from glimpse_agent.persona import Persona
from glimpse_agent.writing import Writing


@dataclass
class Outcome:
    """What one action did, for logs, `once` and the simulation summary."""

    kind: str
    ok: bool = True
    detail: str = ""
    post_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    #: A failed post that waiting may fix (no image backend answered; Glimpse said 429) and
    #: that certainly did not post: seconds after which trying again makes sense.
    retry_after: float | None = None
    #: When the slot runs again (set by ``run_slot`` when it plans a retry), else None.
    retry_at: datetime | None = None


class AgentBase:
    """The attributes and shared steps of ``Agent``; ``Posting`` and ``Engaging`` build on it."""

    config: AgentConfig
    persona: Persona
    glimpse: GlimpseClient
    ledger: AsyncLedger
    router: ImageRouter
    writing: Writing
    clock: Clock
    dry_run: bool
    self_id: str | None
    log: Any
    _limits_inbox: list[tuple[RateLimitInfo, datetime]]

    async def reconcile(self, *, abandon_missing: bool = True) -> int:
        raise NotImplementedError  # Agent's

    async def budgets(self, now: datetime) -> dict[str, int]:
        return await self.ledger.remaining_all(now, self.persona)

    async def _note_failure(self, bucket: str, exc: ServiceError) -> None:
        now = self.clock.now()
        if isinstance(exc, RateLimited):
            # Wait what the server said; with no hint, a minute — never a blind retry loop.
            until = now + timedelta(seconds=exc.retry_after if exc.retry_after else 60)
            await self.ledger.note_rate_limited(exc.bucket or bucket, until)
        await self.ledger.record_error(bucket, str(exc), now)
        self.log.warning(
            "action_failed", bucket=bucket, error=str(exc), error_type=type(exc).__name__
        )

    async def _flush_limits(self) -> None:
        """Feed the X-RateLimit-* headers seen since last time into the ledger, so that the
        server's view tightens ours when it knows less is left."""
        pending, self._limits_inbox[:] = list(self._limits_inbox), []
        latest: dict[str, tuple[RateLimitInfo, datetime]] = {}
        for info, seen in pending:
            latest[info.bucket] = (info, seen)
        for bucket, (info, seen) in latest.items():
            if bucket in {"read", "registration"}:
                continue
            await self.ledger.note_server_limit(
                bucket, info.limit, info.remaining, info.reset, seen
            )


def settle_engagement(
    ledger: Ledger,
    intent_id: str,
    kind: str,
    target: str,
    counterpart: str | None,
    bucket: str,
    at: datetime,
    result: dict[str, Any],
) -> None:
    """Action counted, target remembered (with its counterpart) and intent settled in ONE
    atomic write: a crash can neither lose the engagement nor let it happen twice."""
    with ledger.transaction():
        if bucket:
            ledger.record_action(bucket, at, ref=target)
        if target:
            ledger.mark_engaged(kind, target, at, counterpart=counterpart)
        ledger.settle_intent(intent_id, result)
