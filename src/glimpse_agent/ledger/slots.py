"""Planned slots: which ran (``slots`` in ``ledger.json``; a post with a ``slot_id`` counts too)
and which wait for a retry (``retries``); both kept ``slot_days``."""

from __future__ import annotations

from datetime import datetime, timedelta

from glimpse_agent.ledger.records import iso
from glimpse_agent.ledger.store import LedgerStore, Q, guarded


class SlotLog:
    """Done slots and planned retries, so a restart neither repeats nor forgets a slot."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    @guarded
    def mark_slot_done(self, slot_id: str, at: datetime, *, outcome: str = "done") -> None:
        """Record that planned slot ``slot_id`` ran (posts with a ``slot_id`` do this by
        themselves); ``outcome`` is free text such as ``done``, ``skipped``, ``failed``."""
        with self.store.write():
            self.store.slots.upsert(
                {"slot_id": slot_id, "at": iso(at), "outcome": outcome}, Q.slot_id == slot_id
            )
            self.store.retries.remove(Q.slot_id == slot_id)

    @guarded
    def plan_retry(self, slot_id: str, at: datetime, *, why: str = "failed") -> int:
        """Durably note that slot ``slot_id`` runs again at ``at``, so a restart keeps the
        time; returns how many were planned so far. ``why`` says what moved it: ``failed`` (a
        post that failed for a passing reason, or whose fate is not yet certain) or ``missed``
        (not run while the process was down: made up later). Marking the slot done (or the
        post it makes) ends it."""
        retries = self.store.retries
        with self.store.write():
            doc = retries.get(Q.slot_id == slot_id)
            attempts = int(doc["attempts"]) + 1 if doc else 1
            retries.upsert(
                {"slot_id": slot_id, "at": iso(at), "attempts": attempts, "why": why},
                Q.slot_id == slot_id,
            )
        return attempts

    @guarded
    def retry_reasons(self, day_key: str) -> dict[str, str]:
        """Why each open retry of one plan day was planned (``failed`` or ``missed``; retries
        written before reasons were kept read as ``failed``)."""
        open_ones = self.planned_retries(day_key)
        return {
            d["slot_id"]: str(d.get("why") or "failed")
            for d in self.store.retries.all()
            if d["slot_id"] in open_ones
        }

    @guarded
    def planned_retries(self, day_key: str) -> dict[str, tuple[datetime, int]]:
        """The open retries of one plan day: slot id -> (when it runs again, retries so far).
        A slot that is done by now (its post went out) has none."""
        done = set(self.done_slots(day_key))
        prefix = f"{day_key}/"
        return {
            d["slot_id"]: (datetime.fromisoformat(d["at"]), int(d["attempts"]))
            for d in self.store.retries.all()
            if d["slot_id"].startswith(prefix) and d["slot_id"] not in done
        }

    @guarded
    def done_slots(self, day_key: str) -> list[str]:
        """Ids of the done slots of one plan day: the planner's ids start with ``"<day_key>/"``
        (kept ``slot_days`` days, or ``hot_post_days`` for a slot that produced a post)."""
        prefix = f"{day_key}/"
        ids = {d["slot_id"] for d in self.store.slots.all()}
        ids |= {d["slot_id"] for d in self.store.posts.all() if d.get("slot_id")}
        return sorted(i for i in ids if i.startswith(prefix))

    @guarded
    def slot_done(self, slot_id: str) -> bool:
        """True if ``slot_id`` already ran, so a restart must not run it again."""
        return self.store.slots.contains(Q.slot_id == slot_id) or self.store.posts.contains(
            Q.slot_id == slot_id
        )

    def prune(self, now: datetime) -> None:
        """Drop done slots and retries older than ``slot_days``."""
        cutoff = iso(now - timedelta(days=self.store.retention.slot_days))
        self.store.slots.remove(Q.at < cutoff)
        self.store.retries.remove(Q.at < cutoff)
