"""What the ledger stores, as plain dataclasses, and how each maps to a JSON document.

Documents use ISO-8601 UTC strings for instants and ``YYYY-MM-DD`` for UTC days, so the state
file stays readable by a human doing forensics with ``jq``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

#: Kinds accepted by ``Ledger.mark_engaged``; ``seen`` is used by ``mark_comment_seen``.
ENGAGE_KINDS = ("like", "dislike", "comment", "reply", "follow")
SEEN_KIND = "seen"


@dataclass(frozen=True)
class Retention:
    """How long each kind of record is kept. The defaults keep ``ledger.json`` around 200 KB for a
    busy persona, whatever its age (see ``bench/bench_ledger.py``)."""

    events: timedelta = timedelta(hours=48)  # raw action instants, for the sliding windows
    counter_days: int = 400  # per-day action counts and spend
    hot_post_days: int = 7  # own posts in ledger.json; older ones move to history.jsonl
    post_days: int = 90  # own posts kept in full (in history.jsonl)
    prompt_days: int = 400  # topic + prompt kept for no-repeat checks (in history.jsonl)
    engaged_days: int = 60  # liked/commented/followed/replied/seen items, as digests
    engaged_id_days: int = 14  # the same items' plain ids, for ``engaged_ids()``
    closed_intent_days: int = 2  # settled or abandoned intents, for forensics
    slot_days: int = 7
    plans: int = 7  # the last N saved day plans
    errors: int = 50  # the last N errors
    prune_every: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class OwnPost:
    """One of our posts as published on Glimpse, with how it was made."""

    post_id: str
    seq: int | None
    created_at: datetime
    prompt: str
    topic: str
    caption: str
    backend: str
    model: str
    cost_usd: float
    slot_id: str | None = None
    angle: str = ""  # the planner's angle (composition, light, mood + style), for no-repeat

    def to_doc(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every field, and this runs on every post write.
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["created_at"] = iso(self.created_at)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> OwnPost:
        return cls(
            post_id=doc["post_id"],
            seq=doc.get("seq"),
            created_at=parse_iso(doc["created_at"]),
            prompt=doc.get("prompt", ""),
            topic=doc.get("topic", ""),
            caption=doc.get("caption", ""),
            backend=doc.get("backend", ""),
            model=doc.get("model", ""),
            cost_usd=float(doc.get("cost_usd", 0.0)),
            slot_id=doc.get("slot_id"),
            angle=doc.get("angle", ""),
        )


class PastPrompt(NamedTuple):
    """A prompt we already posted, for no-repeat checks."""

    topic: str
    prompt: str
    at: datetime


@dataclass(frozen=True)
class IdeaRecord:
    """A past post's idea in full: topic, image prompt, when, and the planner's angle."""

    topic: str
    prompt: str
    at: datetime
    angle: str = ""


@dataclass(frozen=True)
class Intent:
    """A side effect we were about to cause; ``state`` is ``open``, ``settled`` or ``abandoned``."""

    intent_id: str
    kind: str
    payload: dict[str, Any]
    at: datetime
    state: str = "open"
    result: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Intent:
        return cls(
            intent_id=doc["intent_id"],
            kind=doc["kind"],
            payload=dict(doc.get("payload") or {}),
            at=parse_iso(doc["at"]),
            state=doc.get("state", "open"),
            result=dict(doc.get("result") or {}),
            reason=doc.get("reason", ""),
        )


@dataclass(frozen=True)
class PostIntent:
    """What a post intent remembers: enough to find the post on Glimpse after a crash (what we
    sent: caption, prompt, model, image URL, nsfw flag), to know when Glimpse can no longer be
    applying it (``deadline``: the request's sent-at plus the client's timeout), and to record
    it as ours (how it was made). Stored as the intent's payload, under the same keys as ever,
    so an older ledger's open intents still reconcile (without a deadline: see
    ``deadline_or``)."""

    slot_id: str | None
    caption: str
    prompt: str
    topic: str
    angle: str
    backend: str
    model: str
    cost_usd: float
    deadline: datetime | None = None
    image_url: str = ""
    is_nsfw: bool = False

    def to_doc(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["deadline"] = iso(self.deadline) if self.deadline is not None else None
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PostIntent:
        # Lenient: a payload from an older version may lack a key or hold a null.
        deadline = doc.get("deadline")
        try:
            parsed = parse_iso(deadline) if isinstance(deadline, str) else None
        except ValueError:
            parsed = None
        return cls(
            slot_id=str(doc.get("slot_id") or "") or None,
            caption=str(doc.get("caption") or ""),
            prompt=str(doc.get("prompt") or ""),
            topic=str(doc.get("topic") or ""),
            angle=str(doc.get("angle") or ""),
            backend=str(doc.get("backend") or ""),
            model=str(doc.get("model") or ""),
            cost_usd=float(doc.get("cost_usd") or 0.0),
            deadline=parsed,
            image_url=str(doc.get("image_url") or ""),
            is_nsfw=bool(doc.get("is_nsfw") or False),
        )

    def deadline_or(self, began: datetime, timeout: timedelta) -> datetime:
        """The request's deadline; for an intent written before deadlines were kept, the
        intent's own instant ``began`` plus ``timeout`` (the request went out just after)."""
        return self.deadline if self.deadline is not None else began + timeout

    def own_post(self, post_id: str, seq: int | None, created_at: datetime) -> OwnPost:
        """The post this intent became, published as ``post_id`` at ``created_at``."""
        return OwnPost(
            post_id=post_id,
            seq=seq,
            created_at=created_at,
            prompt=self.prompt,
            topic=self.topic,
            caption=self.caption,
            backend=self.backend,
            model=self.model,
            cost_usd=self.cost_usd,
            slot_id=self.slot_id,
            angle=self.angle,
        )


@dataclass(frozen=True)
class EngagementIntent:
    """A like, comment, reply or follow we were about to make: its ``kind`` is the intent's
    kind; the payload holds the target, the target's author (``counterpart``) and the quota
    bucket it spends (empty: none)."""

    kind: str
    target: str
    counterpart: str | None
    bucket: str

    def to_doc(self) -> dict[str, Any]:
        return {"target": self.target, "counterpart": self.counterpart, "bucket": self.bucket}

    @classmethod
    def from_doc(cls, kind: str, doc: dict[str, Any]) -> EngagementIntent:
        counterpart = doc.get("counterpart")
        return cls(
            kind=kind,
            target=str(doc.get("target", "")),
            counterpart=None if counterpart is None else str(counterpart),
            bucket=str(doc.get("bucket", "")),
        )


@dataclass(frozen=True)
class ErrorEntry:
    """An error worth showing in ``status``: where it happened and what it said."""

    where: str
    message: str
    at: datetime


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC; naive datetimes are refused rather than guessed."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {at!r}")
    return at.astimezone(UTC)


def iso(at: datetime) -> str:
    """Fixed-width ISO-8601 in UTC (``2026-05-01T12:00:00.000000Z``): exact, and string order is
    time order, which lets queries compare instants as strings."""
    return as_utc(at).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def day_key(day: date) -> str:
    return day.isoformat()


def utc_day(at: datetime) -> date:
    return as_utc(at).date()


def target_key(target_id: str) -> str:
    """A short digest standing in for an engaged item's id: 12 hex digits (48 bits) keep tens of
    thousands of ids apart (a false "already engaged" is ~1e-10 per look-up) at a third of the
    size of a UUID, which is what keeps 60 days of engagement small."""
    return hashlib.blake2b(target_id.encode(), digest_size=6).hexdigest()


def require_json(value: dict[str, Any], what: str) -> dict[str, Any]:
    """Fail now, with a clear message, rather than at the next write, on non-JSON values."""
    try:
        json.dumps(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} must be JSON-serializable: {e}") from e
    return value
