"""Saved day plans: ``plans`` in ``ledger.json``, one JSON-able plan per day, the last
``Retention.plans`` kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from glimpse_agent.ledger.records import iso, require_json
from glimpse_agent.ledger.store import LedgerStore, Q, guarded


class DayPlans:
    """The planner's day plans, so a restart picks up the plan it made."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    @guarded
    def save_plan(self, day_key: str, plan: dict[str, Any]) -> None:
        """Store the (JSON-able) plan for ``day_key``; the last ``plans`` plans are kept."""
        doc = {
            "day": day_key,
            "plan": require_json(plan, "plan"),
            "saved_at": iso(self.store.clock.now()),
        }
        with self.store.write():
            self.store.plans.upsert(doc, Q.day == day_key)

    @guarded
    def load_plan(self, day_key: str) -> dict[str, Any] | None:
        doc = self.store.plans.get(Q.day == day_key)
        return dict(doc["plan"]) if doc else None

    def prune(self, now: datetime) -> None:
        """Keep the last ``plans`` plans saved."""
        keep = self.store.retention.plans
        plans = sorted(self.store.plans.all(), key=lambda d: d["saved_at"], reverse=True)
        if len(plans) > keep:
            self.store.plans.remove(doc_ids=[d.doc_id for d in plans[keep:]])
