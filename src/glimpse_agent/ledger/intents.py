"""Write-ahead intents: ``intents`` in ``ledger.json`` holds one document per side effect we were
about to cause (``open``, then ``settled`` or ``abandoned``); closed ones are kept
``closed_intent_days`` for forensics."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from glimpse_agent.ledger.posts import PostLog
from glimpse_agent.ledger.records import Intent, OwnPost, iso, require_json
from glimpse_agent.ledger.store import LedgerStore, Q, guarded


class IntentLog:
    """Intents, so a crash between a remote call and its record is found (and reconciled)."""

    def __init__(self, store: LedgerStore, posts: PostLog) -> None:
        self.store = store
        self._posts = posts

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
        with self.store.write():
            self.store.intents.insert(doc)
        return intent_id

    @guarded
    def settle_intent(
        self, intent_id: str, result: dict[str, Any], *, post: OwnPost | None = None
    ) -> None:
        """The call happened; ``result`` says what it produced. Passing the resulting ``post``
        records it in the same atomic write, so no crash can separate the two."""
        with self.store.write():
            self._close(intent_id, state="settled", result=require_json(result, "result"))
            if post is not None:
                self._posts.put(post)

    @guarded
    def abandon_intent(self, intent_id: str, reason: str) -> None:
        """The call certainly did not happen (or reconciliation found no trace of it)."""
        with self.store.write():
            self._close(intent_id, state="abandoned", reason=reason)

    @guarded
    def unsettled_intents(self) -> list[Intent]:
        """Open intents (neither settled nor abandoned: a crash or a stop cut them short), oldest
        first."""
        found = [Intent.from_doc(d) for d in self.store.intents.search(Q.state == "open")]
        return sorted(found, key=lambda i: i.at)

    def prune(self, now: datetime) -> None:
        """Drop intents closed more than ``closed_intent_days`` ago."""
        closed_before = iso(now - timedelta(days=self.store.retention.closed_intent_days))
        self.store.intents.remove((Q.state != "open") & (Q.closed_at < closed_before))

    def _close(self, intent_id: str, **fields: Any) -> None:
        doc = self.store.intents.get(Q.intent_id == intent_id)
        if doc is None:
            raise KeyError(f"no intent {intent_id!r} in the ledger")
        if doc["state"] != "open":
            raise ValueError(f"intent {intent_id} is already {doc['state']}")
        fields["closed_at"] = iso(self.store.clock.now())
        self.store.intents.update(fields, doc_ids=[doc.doc_id])
