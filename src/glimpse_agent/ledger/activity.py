"""What the agent did and may still do: actions per rate-limit bucket, server limits and 429
blocks, engaged items, and spend. Part of ``ledger.Ledger``.

Layout in ``ledger.json`` (few, fat documents keep every TinyDB operation cheap):

- ``buckets``: one document per bucket: ``events`` (``[instant, ref]`` pairs of the last 48 h),
  ``days`` (UTC day -> count), ``server`` (the last ``X-RateLimit-*`` view), ``blocked_until``;
- ``engaged``: one document per kind: ``days`` (UTC day -> digests of target ids, see
  ``target_key``) and, for replies, ``counterparts`` (UTC day -> agent id -> count);
- ``spend``: one document per image backend: ``days`` (UTC day -> US dollars).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from glimpse_agent import limits
from glimpse_agent.ledger.core import LedgerCore, Q, guarded
from glimpse_agent.ledger.records import (
    ENGAGE_KINDS,
    SEEN_KIND,
    as_utc,
    day_key,
    iso,
    parse_iso,
    target_key,
    utc_day,
)
from glimpse_agent.persona import Persona


class LedgerActivity(LedgerCore):
    """Actions, limits, engagement and spend (see ``Ledger``)."""

    # ------------------------------------------------------------------ actions and limits

    @guarded
    def record_action(self, bucket: str, at: datetime, *, ref: str | None = None) -> None:
        """Count one ``bucket`` action at ``at``; ``ref`` (the target id) is kept for 48 h.
        Replies count as ``comments``; a like or dislike as ``reactions``."""
        limits.check_bucket(bucket)
        with self._write():
            doc = self._bucket_doc(bucket)
            days = dict(doc.get("days", {}))
            key = day_key(utc_day(at))
            days[key] = days.get(key, 0) + 1
            events = [*doc.get("events", []), [iso(at), ref]]
            self._save(self._buckets, doc, {"bucket": bucket, "events": events, "days": days})

    @guarded
    def events(self, bucket: str, since: datetime) -> list[datetime]:
        """Instants of ``bucket`` actions at or after ``since`` (only the last 48 h are kept)."""
        start = iso(since)
        found = self._bucket_doc(limits.check_bucket(bucket)).get("events", [])
        return sorted(parse_iso(at) for at, _ in found if at >= start)

    @guarded
    def count_on(self, bucket: str, day: date) -> int:
        """How many ``bucket`` actions happened on UTC ``day`` (kept ``counter_days`` days)."""
        days = self._bucket_doc(limits.check_bucket(bucket)).get("days", {})
        return int(days.get(day_key(day), 0))

    @guarded
    def usage(self, bucket: str) -> limits.BucketUsage:
        """Everything ``limits`` needs about ``bucket``: recent events, server view, 429 block."""
        doc = self._bucket_doc(limits.check_bucket(bucket))
        server, blocked = doc.get("server"), doc.get("blocked_until")
        view = None
        if server:
            view = limits.ServerView(
                limit=server["limit"],
                remaining=server["remaining"],
                reset=parse_iso(server["reset"]),
                observed_at=parse_iso(server["observed_at"]),
            )
        return limits.BucketUsage(
            events=tuple(sorted(parse_iso(at) for at, _ in doc.get("events", []))),
            server=view,
            blocked_until=parse_iso(blocked) if blocked else None,
        )

    def remaining(self, bucket: str, now: datetime, persona: Persona) -> int:
        """How many more ``bucket`` actions the platform and the persona allow at ``now``."""
        u = self.usage(bucket)
        caps = limits.persona_caps(persona)
        kw: dict[str, Any] = {"server": u.server, "blocked_until": u.blocked_until}
        return limits.remaining(bucket, u.events, now, caps, **kw)

    def next_free(self, bucket: str, now: datetime, persona: Persona) -> datetime | None:
        """When the next ``bucket`` action is allowed: ``now`` if it already is, ``None`` if the
        caps never allow one (e.g. ``posts_per_day = 0``)."""
        u = self.usage(bucket)
        caps = limits.persona_caps(persona)
        kw: dict[str, Any] = {"server": u.server, "blocked_until": u.blocked_until}
        return limits.next_free(bucket, u.events, now, caps, **kw)

    def remaining_all(self, now: datetime, persona: Persona) -> dict[str, int]:
        """What is left in every bucket at ``now``, for the planner."""
        usage = {b: self.usage(b) for b in limits.BUCKETS}
        return limits.remaining_all(usage, now, limits.persona_caps(persona))

    @guarded
    def note_server_limit(
        self, bucket: str, limit: int, remaining: int, reset: datetime, now: datetime
    ) -> None:
        """Remember the ``X-RateLimit-*`` headers of a response received at ``now``; they can
        only lower ``remaining``, and only until ``reset``."""
        limits.check_bucket(bucket)
        view = {
            "limit": limit,
            "remaining": remaining,
            "reset": iso(reset),
            "observed_at": iso(now),
        }
        with self._write():
            self._save(self._buckets, self._bucket_doc(bucket), {"bucket": bucket, "server": view})

    @guarded
    def note_rate_limited(self, bucket: str, until: datetime) -> None:
        """A 429 said wait: ``bucket`` has nothing left until ``until`` (a later block wins)."""
        limits.check_bucket(bucket)
        with self._write():
            doc = self._bucket_doc(bucket)
            current = doc.get("blocked_until")
            if current is None or parse_iso(current) < as_utc(until):
                self._save(self._buckets, doc, {"bucket": bucket, "blocked_until": iso(until)})

    def _bucket_doc(self, bucket: str) -> dict[str, Any]:
        return self._buckets.get(Q.bucket == bucket) or {}

    # ------------------------------------------------------------------ engaged items

    @guarded
    def has_engaged(self, kind: str, target_id: str) -> bool:
        """True if we already did ``kind`` (like, dislike, comment, reply, follow) on
        ``target_id`` within ``engaged_days``."""
        return target_key(target_id) in self._engaged_keys(_check_kind(kind))

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
        return target_key(comment_id) in self._engaged_keys(SEEN_KIND)

    def _kind_doc(self, kind: str) -> dict[str, Any]:
        return self._engaged.get(Q.kind == kind) or {}

    def _engaged_keys(self, kind: str) -> set[str]:
        """Every key of ``kind`` as a set, so look-ups do not scan 60 days of lists."""
        if self._index_epoch != self.storage.epoch:
            self._engaged_index.clear()
            self._index_epoch = self.storage.epoch
        keys = self._engaged_index.get(kind)
        if keys is None:
            days = self._kind_doc(kind).get("days", {})
            keys = self._engaged_index[kind] = {k for day in days.values() for k in day}
        return keys

    def _mark(self, kind: str, target_id: str, at: datetime, counterpart: str | None) -> bool:
        key, day = target_key(target_id), day_key(utc_day(at))
        with self._write():
            if key in self._engaged_keys(kind):
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
            self._save(self._engaged, doc, fields)
            self._engaged_keys(kind).add(key)
        return True

    # ------------------------------------------------------------------ spend

    @guarded
    def record_spend(self, amount_usd: float, *, backend: str, at: datetime) -> None:
        """Add ``amount_usd`` spent on image ``backend`` to ``at``'s UTC day."""
        if not math.isfinite(amount_usd) or amount_usd < 0:
            raise ValueError(f"amount_usd must be a finite amount >= 0, got {amount_usd!r}")
        key = day_key(utc_day(at))
        with self._write():
            doc: dict[str, Any] = self._spend.get(Q.backend == backend) or {}
            days = dict(doc.get("days", {}))
            days[key] = round(days.get(key, 0.0) + amount_usd, 6)
            self._save(self._spend, doc, {"backend": backend, "days": days})

    @guarded
    def spent_on(self, day: date) -> float:
        """US dollars spent on UTC ``day``, all backends together."""
        key = day_key(day)
        return round(sum(float(d["days"].get(key, 0.0)) for d in self._spend.all()), 6)


def _check_kind(kind: str) -> str:
    if kind not in ENGAGE_KINDS:
        raise ValueError(f"unknown engagement kind {kind!r}; expected one of {ENGAGE_KINDS}")
    return kind
