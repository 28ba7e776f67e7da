"""Actions per rate-limit bucket, the server's rate-limit view and 429 blocks, and what is left.

``buckets`` in ``ledger.json`` holds one document per bucket: ``events`` (``[instant, ref]`` pairs
of the last ``Retention.events``), ``days`` (UTC day -> count, kept ``counter_days``), ``server``
(the last ``X-RateLimit-*`` view, until its reset) and ``blocked_until`` (a 429's block). Few, fat
documents keep every TinyDB operation cheap.

A block or reset is never kept beyond what the bucket's longest window allows
(``limits.latest_block``): clamped when it is noted, when it is read (an older version stored
``Retry-After: 315360000`` as a block until 2036) and, so that such a block then runs out, when
the bucket is pruned.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from tinydb.table import Document

from glimpse_agent import limits
from glimpse_agent.ledger.records import as_utc, day_key, iso, parse_iso, utc_day
from glimpse_agent.ledger.store import LedgerStore, Q, days_from, guarded
from glimpse_agent.persona import Persona


class ActionLog:
    """Counts actions per bucket and answers "what is left" through ``limits``."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    @guarded
    def record_action(self, bucket: str, at: datetime, *, ref: str | None = None) -> None:
        """Count one ``bucket`` action at ``at``; ``ref`` (the target id) is kept for 48 h.
        Replies count as ``comments``; a like or dislike as ``reactions``."""
        limits.check_bucket(bucket)
        with self.store.write():
            doc = self._bucket_doc(bucket)
            days = dict(doc.get("days", {}))
            key = day_key(utc_day(at))
            days[key] = days.get(key, 0) + 1
            events = [*doc.get("events", []), [iso(at), ref]]
            self.store.save(
                self.store.buckets, doc, {"bucket": bucket, "events": events, "days": days}
            )

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
    def usage(self, bucket: str, now: datetime | None = None) -> limits.BucketUsage:
        """Everything ``limits`` needs about ``bucket``: recent events, server view, 429 block;
        the block and the view's reset no later than ``limits.latest_block`` from ``now`` (the
        store's clock when omitted)."""
        doc = self._bucket_doc(limits.check_bucket(bucket))
        latest = limits.latest_block(bucket, now or self.store.clock.now())
        server, blocked = doc.get("server"), doc.get("blocked_until")
        view = None
        if server:
            view = limits.ServerView(
                limit=server["limit"],
                remaining=server["remaining"],
                reset=min(parse_iso(server["reset"]), latest),
                observed_at=parse_iso(server["observed_at"]),
            )
        return limits.BucketUsage(
            events=tuple(sorted(parse_iso(at) for at, _ in doc.get("events", []))),
            server=view,
            blocked_until=min(parse_iso(blocked), latest) if blocked else None,
        )

    def remaining(self, bucket: str, now: datetime, persona: Persona) -> int:
        """How many more ``bucket`` actions the platform and the persona allow at ``now``."""
        u = self.usage(bucket, now)
        caps = limits.persona_caps(persona)
        kw: dict[str, Any] = {"server": u.server, "blocked_until": u.blocked_until}
        return limits.remaining(bucket, u.events, now, caps, **kw)

    def next_free(self, bucket: str, now: datetime, persona: Persona) -> datetime | None:
        """When the next ``bucket`` action is allowed: ``now`` if it already is, ``None`` if the
        caps never allow one (e.g. ``posts_per_day = 0``)."""
        u = self.usage(bucket, now)
        caps = limits.persona_caps(persona)
        kw: dict[str, Any] = {"server": u.server, "blocked_until": u.blocked_until}
        return limits.next_free(bucket, u.events, now, caps, **kw)

    def remaining_all(self, now: datetime, persona: Persona) -> dict[str, int]:
        """What is left in every bucket at ``now``, for the planner."""
        usage = {b: self.usage(b, now) for b in limits.BUCKETS}
        return limits.remaining_all(usage, now, limits.persona_caps(persona))

    @guarded
    def note_server_limit(
        self, bucket: str, limit: int, remaining: int, reset: datetime, now: datetime
    ) -> None:
        """Remember the ``X-RateLimit-*`` headers of a response received at ``now``; they can
        only lower ``remaining``, and only until ``reset`` (at the latest
        ``limits.latest_block``)."""
        limits.check_bucket(bucket)
        view = {
            "limit": limit,
            "remaining": remaining,
            "reset": iso(limits.clamp_block(bucket, as_utc(reset), as_utc(now))),
            "observed_at": iso(now),
        }
        with self.store.write():
            doc = self._bucket_doc(bucket)
            self.store.save(self.store.buckets, doc, {"bucket": bucket, "server": view})

    @guarded
    def note_rate_limited(self, bucket: str, until: datetime, now: datetime | None = None) -> None:
        """A 429 said wait: ``bucket`` has nothing left until ``until`` (a later block wins),
        but never past ``limits.latest_block`` from ``now`` (the store's clock when omitted)."""
        limits.check_bucket(bucket)
        until = limits.clamp_block(bucket, as_utc(until), as_utc(now or self.store.clock.now()))
        with self.store.write():
            doc = self._bucket_doc(bucket)
            current = doc.get("blocked_until")
            if current is None or parse_iso(current) < until:
                fields = {"bucket": bucket, "blocked_until": iso(until)}
                self.store.save(self.store.buckets, doc, fields)

    def prune(self, now: datetime) -> None:
        """Drop events older than ``events``, day counts older than ``counter_days``, and a
        server view or 429 block that has run out."""
        r = self.store.retention
        cutoff = iso(now - r.events)
        first_day = day_key(utc_day(now) - timedelta(days=r.counter_days))
        for doc in self.store.buckets.all():
            self.store.trim(self.store.buckets, doc, _trimmed(doc, now, cutoff, first_day))

    def _bucket_doc(self, bucket: str) -> dict[str, Any]:
        return self.store.buckets.get(Q.bucket == bucket) or {}


def _trimmed(doc: Document, now: datetime, cutoff: str, first_day: str) -> dict[str, Any]:
    server, blocked = doc.get("server"), doc.get("blocked_until")
    bucket = doc.get("bucket")
    if isinstance(bucket, str) and bucket in limits.PLATFORM:
        # What an older version stored past the bucket's longest window now runs out then.
        latest = iso(limits.latest_block(bucket, now))
        if server and parse_iso(server["reset"]) > parse_iso(latest):
            server = {**server, "reset": latest}
        if blocked and parse_iso(blocked) > parse_iso(latest):
            blocked = latest
    return {
        "events": [e for e in doc.get("events", []) if e[0] >= cutoff],
        "days": days_from(doc.get("days", {}), first_day),
        "server": server if server and parse_iso(server["reset"]) > now else None,
        "blocked_until": blocked if blocked and parse_iso(blocked) > now else None,
    }
