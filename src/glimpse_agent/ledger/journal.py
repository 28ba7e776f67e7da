"""What the agent made and meant to do: own posts and done slots, write-ahead intents, the
last errors and the day plans. Part of ``ledger.Ledger``."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from glimpse_agent.ledger.core import LedgerCore, Q, guarded
from glimpse_agent.ledger.records import (
    ErrorEntry,
    IdeaRecord,
    Intent,
    OwnPost,
    PastPrompt,
    as_utc,
    iso,
    parse_iso,
    require_json,
    utc_day,
)
from glimpse_agent.redaction import redact_text

_MAX_ERROR_CHARS = 2000


class LedgerJournal(LedgerCore):
    """Posts, slots, intents, errors and plans (see ``Ledger``)."""

    @guarded
    def add_post(self, post: OwnPost) -> None:
        """Record one of our posts (idempotent by ``post_id``). Its slot counts as done."""
        with self._write():
            self._posts.upsert(post.to_doc(), Q.post_id == post.post_id)

    @guarded
    def recent_posts(self, n: int) -> list[OwnPost]:
        """Our ``n`` most recent posts, newest first."""
        posts = [OwnPost.from_doc(d) for d in self._posts.all()]
        if len(posts) < n:
            known = {p.post_id for p in posts}
            posts += [p for p in self.history.posts() if p.post_id not in known]
        return sorted(posts, key=lambda p: p.created_at, reverse=True)[:n]

    @guarded
    def posts_on(self, day: date) -> list[OwnPost]:
        """Our posts created on UTC ``day``, oldest first (full posts are kept ``post_days``)."""
        posts = {d["post_id"]: OwnPost.from_doc(d) for d in self._posts.all()}
        if day <= utc_day(self._clock.now()) - timedelta(days=self.retention.hot_post_days):
            posts = {p.post_id: p for p in self.history.posts()} | posts
        return sorted(
            (p for p in posts.values() if utc_day(p.created_at) == day), key=lambda p: p.created_at
        )

    @guarded
    def prompts_since(self, since: datetime) -> list[PastPrompt]:
        """(topic, prompt, at) of our posts created at or after ``since``, oldest first; kept
        ``prompt_days`` days for no-repeat checks."""
        return [PastPrompt(i.topic, i.prompt, i.at) for i in self.ideas_since(since)]

    @guarded
    def ideas_since(self, since: datetime) -> list[IdeaRecord]:
        """Like ``prompts_since``, with the planner's angle of each post (empty if it was
        recorded before angles were kept)."""
        since = as_utc(since)
        found: dict[str, IdeaRecord] = {}
        if since < self._clock.now() - timedelta(days=self.retention.hot_post_days):
            found.update(self.history.prompts(since))
        for d in self._posts.all():
            at = parse_iso(d["created_at"])
            if at >= since:
                found[d["post_id"]] = IdeaRecord(d["topic"], d["prompt"], at, d.get("angle", ""))
        return sorted(found.values(), key=lambda p: p.at)

    @guarded
    def mark_slot_done(self, slot_id: str, at: datetime, *, outcome: str = "done") -> None:
        """Record that planned slot ``slot_id`` ran (posts with a ``slot_id`` do this by
        themselves); ``outcome`` is free text such as ``done``, ``skipped``, ``failed``."""
        with self._write():
            self._slots.upsert(
                {"slot_id": slot_id, "at": iso(at), "outcome": outcome}, Q.slot_id == slot_id
            )
            self._retries.remove(Q.slot_id == slot_id)

    @guarded
    def plan_retry(self, slot_id: str, at: datetime) -> int:
        """Durably note that slot ``slot_id`` runs again at ``at`` (a post that failed for a
        passing reason), so a restart keeps the retry; returns how many were planned so far.
        Marking the slot done (or the post it makes) ends it."""
        with self._write():
            doc = self._retries.get(Q.slot_id == slot_id)
            attempts = int(doc["attempts"]) + 1 if doc else 1
            self._retries.upsert(
                {"slot_id": slot_id, "at": iso(at), "attempts": attempts}, Q.slot_id == slot_id
            )
        return attempts

    @guarded
    def planned_retries(self, day_key: str) -> dict[str, tuple[datetime, int]]:
        """The open retries of one plan day: slot id -> (when it runs again, retries so far).
        A slot that is done by now (its post went out) has none."""
        done = set(self.done_slots(day_key))
        prefix = f"{day_key}/"
        return {
            d["slot_id"]: (datetime.fromisoformat(d["at"]), int(d["attempts"]))
            for d in self._retries.all()
            if d["slot_id"].startswith(prefix) and d["slot_id"] not in done
        }

    @guarded
    def done_slots(self, day_key: str) -> list[str]:
        """Ids of the done slots of one plan day: the planner's ids start with ``"<day_key>/"``
        (kept ``slot_days`` days, or ``hot_post_days`` for a slot that produced a post)."""
        prefix = f"{day_key}/"
        ids = {d["slot_id"] for d in self._slots.all()}
        ids |= {d["slot_id"] for d in self._posts.all() if d.get("slot_id")}
        return sorted(i for i in ids if i.startswith(prefix))

    @guarded
    def slot_done(self, slot_id: str) -> bool:
        """True if ``slot_id`` already ran, so a restart must not run it again."""
        return self._slots.contains(Q.slot_id == slot_id) or self._posts.contains(
            Q.slot_id == slot_id
        )

    @guarded
    def begin_intent(self, kind: str, payload: dict[str, Any], at: datetime) -> str:
        """Durably record that we are about to cause ``kind`` (e.g. ``post``); returns its id.
        Call it *before* the remote call, then ``settle_intent`` or ``abandon_intent``."""
        intent_id = uuid.uuid4().hex
        doc = {
            "intent_id": intent_id,
            "kind": kind,
            "payload": require_json(payload, "payload"),
            "at": iso(at),
            "state": "open",
        }
        with self._write():
            self._intents.insert(doc)
        return intent_id

    @guarded
    def settle_intent(
        self, intent_id: str, result: dict[str, Any], *, post: OwnPost | None = None
    ) -> None:
        """The call happened; ``result`` says what it produced. Passing the resulting ``post``
        records it in the same atomic write, so no crash can separate the two."""
        with self._write():
            self._close_intent(intent_id, state="settled", result=require_json(result, "result"))
            if post is not None:
                self._posts.upsert(post.to_doc(), Q.post_id == post.post_id)

    @guarded
    def abandon_intent(self, intent_id: str, reason: str) -> None:
        """The call certainly did not happen (or reconciliation found no trace of it)."""
        with self._write():
            self._close_intent(intent_id, state="abandoned", reason=reason)

    @guarded
    def unsettled_intents(self) -> list[Intent]:
        """Open intents (neither settled nor abandoned: a crash or a stop cut them short), oldest
        first."""
        found = [Intent.from_doc(d) for d in self._intents.search(Q.state == "open")]
        return sorted(found, key=lambda i: i.at)

    def _close_intent(self, intent_id: str, **fields: Any) -> None:
        doc = self._intents.get(Q.intent_id == intent_id)
        if doc is None:
            raise KeyError(f"no intent {intent_id!r} in the ledger")
        if doc["state"] != "open":
            raise ValueError(f"intent {intent_id} is already {doc['state']}")
        fields["closed_at"] = iso(self._clock.now())
        self._intents.update(fields, doc_ids=[doc.doc_id])

    # ------------------------------------------------------------------ errors, plans, status

    @guarded
    def record_error(self, where: str, message: str, at: datetime) -> None:
        """Keep an error for ``status`` (secrets masked; only the last ``errors`` are kept)."""
        doc = {"where": where, "message": redact_text(message)[:_MAX_ERROR_CHARS], "at": iso(at)}
        with self._write():
            self._errors.insert(doc)
            ids = sorted(d.doc_id for d in self._errors.all())
            if len(ids) > self.retention.errors:
                self._errors.remove(doc_ids=ids[: len(ids) - self.retention.errors])

    @guarded
    def last_errors(self, n: int) -> list[ErrorEntry]:
        """The ``n`` most recent errors, newest first."""
        docs = sorted(self._errors.all(), key=lambda d: d.doc_id, reverse=True)[:n]
        return [ErrorEntry(d["where"], d["message"], parse_iso(d["at"])) for d in docs]

    @guarded
    def save_plan(self, day_key: str, plan: dict[str, Any]) -> None:
        """Store the (JSON-able) plan for ``day_key``; the last ``plans`` plans are kept."""
        doc = {
            "day": day_key,
            "plan": require_json(plan, "plan"),
            "saved_at": iso(self._clock.now()),
        }
        with self._write():
            self._plans.upsert(doc, Q.day == day_key)

    @guarded
    def load_plan(self, day_key: str) -> dict[str, Any] | None:
        doc = self._plans.get(Q.day == day_key)
        return dict(doc["plan"]) if doc else None
