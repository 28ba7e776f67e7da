"""What we engaged with: liked, disliked, commented, replied, followed, and comments we have seen.

``engaged`` in ``ledger.json`` holds one document per kind: ``days`` (UTC day -> digests of target
ids, see ``target_key``; kept ``engaged_days``), ``ids`` (UTC day -> plain ids, kept
``engaged_id_days``, for the planner's filters; none for seen comments) and, for replies,
``counterparts`` (UTC day -> agent id -> count).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from glimpse_agent.ledger.records import ENGAGE_KINDS, SEEN_KIND, day_key, target_key, utc_day
from glimpse_agent.ledger.store import LedgerStore, Q, days_from, guarded


class EngagementLog:
    """Engaged items by kind, with a per-kind set of digests for fast look-ups."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        # kind -> every engaged key, derived from the ``engaged`` table; valid for one storage
        # epoch (a rollback or failed write bumps it) and cleared by prune.
        self._index: dict[str, set[str]] = {}
        self._index_epoch = -1

    @guarded
    def has_engaged(self, kind: str, target_id: str) -> bool:
        """True if we already did ``kind`` (like, dislike, comment, reply, follow) on
        ``target_id`` within ``engaged_days``."""
        return target_key(target_id) in self._keys(_check_kind(kind))

    @guarded
    def mark_engaged(
        self, kind: str, target_id: str, at: datetime, *, counterpart: str | None = None
    ) -> bool:
        """Remember we did ``kind`` on ``target_id``; ``counterpart`` is the other agent (counted
        per day, see ``replies_to_counterpart``). Returns False if it was already marked.
        Counting the action itself is ``record_action``'s job (use ``transaction()`` for both)."""
        return self._mark(_check_kind(kind), target_id, at, counterpart)

    @guarded
    def replies_to_counterpart(self, agent_id: str, day: date) -> int:
        """How many replies we made to ``agent_id`` on UTC ``day``."""
        per_day = self._kind_doc("reply").get("counterparts", {})
        return int(per_day.get(day_key(day), {}).get(agent_id, 0))

    @guarded
    def replies_by_counterpart(self, day: date) -> dict[str, int]:
        """Replies we made on UTC ``day``, by the agent we answered."""
        per_day = self._kind_doc("reply").get("counterparts", {})
        return {agent: int(n) for agent, n in per_day.get(day_key(day), {}).items()}

    @guarded
    def engaged_ids(self) -> dict[str, frozenset[str]]:
        """The ids we liked, disliked, commented on, replied to and followed in the last
        ``engaged_id_days`` days, by kind (every kind present), for the planner's filters. Older
        ones are still known to ``has_engaged`` for ``engaged_days``."""
        out: dict[str, frozenset[str]] = {}
        for kind in ENGAGE_KINDS:
            ids = self._kind_doc(kind).get("ids", {})
            out[kind] = frozenset(i for day in ids.values() for i in day)
        return out

    @guarded
    def mark_comment_seen(self, comment_id: str, at: datetime) -> bool:
        """Remember we looked at comment ``comment_id`` on our post (answered or not)."""
        return self._mark(SEEN_KIND, comment_id, at, None)

    @guarded
    def seen_comment(self, comment_id: str) -> bool:
        """True if ``mark_comment_seen`` was called for ``comment_id`` within ``engaged_days``."""
        return target_key(comment_id) in self._keys(SEEN_KIND)

    def prune(self, now: datetime) -> None:
        """Drop digests and counterparts older than ``engaged_days``, plain ids older than
        ``engaged_id_days``."""
        r, today = self.store.retention, utc_day(now)
        first_day = day_key(today - timedelta(days=r.engaged_days))
        first_id_day = day_key(today - timedelta(days=r.engaged_id_days))
        for doc in self.store.engaged.all():
            kept = {
                "days": days_from(doc.get("days", {}), first_day),
                "ids": days_from(doc.get("ids", {}), first_id_day),
                "counterparts": days_from(doc.get("counterparts", {}), first_day),
            }
            self.store.trim(self.store.engaged, doc, kept)
        self._index.clear()

    def _kind_doc(self, kind: str) -> dict[str, Any]:
        return self.store.engaged.get(Q.kind == kind) or {}

    def _keys(self, kind: str) -> set[str]:
        """Every key of ``kind`` as a set, so look-ups do not scan 60 days of lists."""
        epoch = self.store.storage.epoch
        if self._index_epoch != epoch:
            self._index.clear()
            self._index_epoch = epoch
        keys = self._index.get(kind)
        if keys is None:
            days = self._kind_doc(kind).get("days", {})
            keys = self._index[kind] = {k for day in days.values() for k in day}
        return keys

    def _mark(self, kind: str, target_id: str, at: datetime, counterpart: str | None) -> bool:
        key, day = target_key(target_id), day_key(utc_day(at))
        with self.store.write():
            if key in self._keys(kind):
                return False
            doc = self._kind_doc(kind)
            days = dict(doc.get("days", {}))
            days[day] = [*days.get(day, []), key]
            fields: dict[str, Any] = {"kind": kind, "days": days}
            if kind != SEEN_KIND:  # plain ids, for engaged_ids(); seen comments need none
                ids = dict(doc.get("ids", {}))
                ids[day] = [*ids.get(day, []), target_id]
                fields["ids"] = ids
            if counterpart is not None:
                per_day = dict(doc.get("counterparts", {}))
                today = dict(per_day.get(day, {}))
                today[counterpart] = today.get(counterpart, 0) + 1
                fields["counterparts"] = {**per_day, day: today}
            self.store.save(self.store.engaged, doc, fields)
            self._keys(kind).add(key)
        return True


def _check_kind(kind: str) -> str:
    if kind not in ENGAGE_KINDS:
        raise ValueError(f"unknown engagement kind {kind!r}; expected one of {ENGAGE_KINDS}")
    return kind
