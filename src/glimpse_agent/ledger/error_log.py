"""The last errors, for ``status``: ``errors`` in ``ledger.json``, the last ``Retention.errors``
(trimmed on every write, so there is nothing to prune)."""

from __future__ import annotations

from datetime import datetime

from glimpse_agent.ledger.records import ErrorEntry, iso, parse_iso
from glimpse_agent.ledger.store import LedgerStore, guarded
from glimpse_agent.redaction import redact_text

MAX_ERROR_CHARS = 2000


class ErrorLog:
    """Errors worth showing, secrets masked."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    @guarded
    def record_error(self, where: str, message: str, at: datetime) -> None:
        """Keep an error for ``status`` (secrets masked; only the last ``errors`` are kept)."""
        doc = {"where": where, "message": redact_text(message)[:MAX_ERROR_CHARS], "at": iso(at)}
        errors, keep = self.store.errors, self.store.retention.errors
        with self.store.write():
            errors.insert(doc)
            ids = sorted(d.doc_id for d in errors.all())
            if len(ids) > keep:
                errors.remove(doc_ids=ids[: len(ids) - keep])

    @guarded
    def last_errors(self, n: int) -> list[ErrorEntry]:
        """The ``n`` most recent errors, newest first."""
        docs = sorted(self.store.errors.all(), key=lambda d: d.doc_id, reverse=True)[:n]
        return [ErrorEntry(d["where"], d["message"], parse_iso(d["at"])) for d in docs]
