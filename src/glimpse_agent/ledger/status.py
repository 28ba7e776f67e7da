"""The ``status`` summary of a ledger: quotas used and left, spend, recent posts, last errors.

A plain JSON-able dict, so ``glimpse-agent status`` can print it as a table or as ``--json``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Protocol

from glimpse_agent import limits
from glimpse_agent.ledger.records import ErrorEntry, Intent, OwnPost, iso, utc_day
from glimpse_agent.ledger.storage import AtomicJSONStorage
from glimpse_agent.persona import Persona

RECENT = 5


class LedgerReads(Protocol):
    """The reads the summary needs (``Ledger`` has them)."""

    @property
    def storage(self) -> AtomicJSONStorage: ...

    def usage(self, bucket: str) -> limits.BucketUsage: ...

    def count_on(self, bucket: str, day: date) -> int: ...

    def spent_on(self, day: date) -> float: ...

    def recent_posts(self, n: int) -> list[OwnPost]: ...

    def unsettled_intents(self) -> list[Intent]: ...

    def last_errors(self, n: int) -> list[ErrorEntry]: ...


def status_view(ledger: LedgerReads, now: datetime, persona: Persona) -> dict[str, Any]:
    """Quotas per bucket (used today, daily cap, left now, next free, blocked until), spend today
    against the budget, the last posts, unsettled intents and the last errors."""
    caps = limits.persona_caps(persona)
    today = utc_day(now)
    quotas: dict[str, Any] = {}
    for bucket in limits.BUCKETS:
        u = ledger.usage(bucket)
        daily = [w.limit for w in limits.windows(bucket, caps) if w.per == "day"]
        kw: dict[str, Any] = {"server": u.server, "blocked_until": u.blocked_until}
        free = limits.next_free(bucket, u.events, now, caps, **kw)
        quotas[bucket] = {
            "used_today": ledger.count_on(bucket, today),
            "daily_cap": min(daily) if daily else None,
            "left": limits.remaining(bucket, u.events, now, caps, **kw),
            "next_free": iso(free) if free else None,
            "blocked_until": iso(u.blocked_until)
            if u.blocked_until and u.blocked_until > now
            else None,
        }
    return {
        "at": iso(now),
        "quotas": quotas,
        "spend_today_usd": ledger.spent_on(today),
        "budget_usd_per_day": persona.budget_usd_per_day,
        "recent_posts": [
            {
                "post_id": p.post_id,
                "at": iso(p.created_at),
                "topic": p.topic,
                "caption": p.caption[:80],
                "backend": p.backend,
                "cost_usd": p.cost_usd,
            }
            for p in ledger.recent_posts(RECENT)
        ],
        "unsettled_intents": [
            {"intent_id": i.intent_id, "kind": i.kind, "at": iso(i.at)}
            for i in ledger.unsettled_intents()
        ],
        "last_errors": [
            {"where": e.where, "message": e.message, "at": iso(e.at)}
            for e in ledger.last_errors(RECENT)
        ],
        "ledger_bytes": ledger.storage.size_bytes(),
    }
