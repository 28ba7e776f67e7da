"""``Quota``: what is left in each bucket, and what tightens it after an action: a failure (a
429 blocks its bucket until the server's wait is over) and the server's X-RateLimit-* headers."""

from __future__ import annotations

from datetime import datetime, timedelta

from glimpse_agent.agent.context import AgentContext
from glimpse_agent.errors import RateLimited, ServiceError
from glimpse_agent.glimpse import RateLimitInfo


class Quota:
    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx

    async def left(self, now: datetime) -> dict[str, int]:
        """What is left in every bucket at ``now``."""
        return await self.ctx.ledger.remaining_all(now, self.ctx.persona)

    async def note_failure(self, bucket: str, exc: ServiceError) -> None:
        now = self.ctx.clock.now()
        if isinstance(exc, RateLimited):
            # Wait what the server said; with no hint, a minute — never a blind retry loop.
            until = now + timedelta(seconds=exc.retry_after if exc.retry_after else 60)
            await self.ctx.ledger.note_rate_limited(exc.bucket or bucket, until)
        await self.ctx.ledger.record_error(bucket, str(exc), now)
        self.ctx.log.warning(
            "action_failed", bucket=bucket, error=str(exc), error_type=type(exc).__name__
        )

    async def flush_server_limits(self) -> None:
        """Feed the X-RateLimit-* headers seen since last time into the ledger, so that the
        server's view tightens ours when it knows less is left."""
        inbox = self.ctx.rate_limit_inbox
        pending, inbox[:] = list(inbox), []
        latest: dict[str, tuple[RateLimitInfo, datetime]] = {}
        for info, seen in pending:
            latest[info.bucket] = (info, seen)
        for bucket, (info, seen) in latest.items():
            if bucket in {"read", "registration"}:
                continue
            await self.ctx.ledger.note_server_limit(
                bucket, info.limit, info.remaining, info.reset, seen
            )
