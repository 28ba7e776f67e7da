"""Money spent on images: ``spend`` in ``ledger.json`` holds one document per image backend,
``days`` (UTC day -> US dollars, kept ``counter_days``)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

from glimpse_agent.ledger.records import day_key, utc_day
from glimpse_agent.ledger.store import LedgerStore, Q, days_from, guarded


class SpendLog:
    """US dollars spent per UTC day and image backend."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    @guarded
    def record_spend(self, amount_usd: float, *, backend: str, at: datetime) -> None:
        """Add ``amount_usd`` spent on image ``backend`` to ``at``'s UTC day."""
        if not math.isfinite(amount_usd) or amount_usd < 0:
            raise ValueError(f"amount_usd must be a finite amount >= 0, got {amount_usd!r}")
        key = day_key(utc_day(at))
        with self.store.write():
            doc: dict[str, Any] = self.store.spend.get(Q.backend == backend) or {}
            days = dict(doc.get("days", {}))
            days[key] = round(days.get(key, 0.0) + amount_usd, 6)
            self.store.save(self.store.spend, doc, {"backend": backend, "days": days})

    @guarded
    def spent_on(self, day: date) -> float:
        """US dollars spent on UTC ``day``, all backends together."""
        key = day_key(day)
        return round(sum(float(d["days"].get(key, 0.0)) for d in self.store.spend.all()), 6)

    def prune(self, now: datetime) -> None:
        """Drop days older than ``counter_days``."""
        first_day = day_key(utc_day(now) - timedelta(days=self.store.retention.counter_days))
        for doc in self.store.spend.all():
            kept = {"days": days_from(doc.get("days", {}), first_day)}
            self.store.trim(self.store.spend, doc, kept)
