"""The ledger's machinery: tables, the lock, one-write transactions and retention.

``LedgerCore`` owns the TinyDB tables of ``ledger.json`` and makes every public write durable
before it returns (``_write``); the subject classes (``ledger_activity``, ``ledger_journal``) add
the domain methods and ``ledger.Ledger`` puts them together.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from tinydb import Query, TinyDB
from tinydb.table import Document, Table

from glimpse_agent.clock import Clock
from glimpse_agent.errors import StateError
from glimpse_agent.ledger.history import PostHistory
from glimpse_agent.ledger.records import (
    OwnPost,
    Retention,
    as_utc,
    day_key,
    iso,
    parse_iso,
    utc_day,
)
from glimpse_agent.ledger.storage import AtomicJSONStorage, StateLock
from glimpse_agent.limits import day_start

SCHEMA = 1
LEDGER_FILE = "ledger.json"
HISTORY_FILE = "history.jsonl"

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound="LedgerCore")
Q = Query()


def _since(by_day: dict[str, Any], first_day: str) -> dict[str, Any]:
    return {day: v for day, v in by_day.items() if day >= first_day}


def _trim_bucket(doc: Document, now: datetime, cutoff: str, first_day: str) -> dict[str, Any]:
    """A bucket document without events older than ``cutoff``, day counts before ``first_day``,
    and a server view or 429 block that has run out."""
    server, blocked = doc.get("server"), doc.get("blocked_until")
    return {
        "events": [e for e in doc.get("events", []) if e[0] >= cutoff],
        "days": _since(doc.get("days", {}), first_day),
        "server": server if server and parse_iso(server["reset"]) > now else None,
        "blocked_until": blocked if blocked and parse_iso(blocked) > now else None,
    }


def guarded(method: Callable[Concatenate[C, P], R]) -> Callable[Concatenate[C, P], R]:
    """Serialize calls (the ledger may be used from a worker thread) and refuse a closed ledger."""

    @functools.wraps(method)
    def wrapper(self: C, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._mutex:
            if self._closed:
                raise StateError(f"the ledger on {self.state_dir} is closed")
            return method(self, *args, **kwargs)

    return wrapper


class LedgerCore:
    """Tables, lock and durability shared by every part of the ledger."""

    def __init__(
        self,
        state_dir: Path,
        *,
        lock: StateLock | None,
        clock: Clock,
        retention: Retention,
        read_only: bool = False,
    ) -> None:
        """Use ``Ledger.open``: it takes the directory's lock first."""
        self.state_dir = state_dir
        self.retention = retention
        self.read_only = read_only
        self._lock = lock
        self._clock = clock
        self._mutex = threading.RLock()
        self._closed = False
        self._last_prune: datetime | None = None
        # kind -> every engaged key, derived from the ``engaged`` table; valid for one storage
        # epoch (a rollback or failed write bumps it) and cleared by prune.
        self._engaged_index: dict[str, set[str]] = {}
        self._index_epoch = -1
        self.storage = AtomicJSONStorage(state_dir / LEDGER_FILE, read_only=read_only)
        self._db = TinyDB(storage=lambda: self.storage)
        # TinyDB's query cache would go stale when a failed transaction is rolled back, and the
        # storage already answers reads from memory: turn it off.
        table = functools.partial(self._db.table, cache_size=0)
        self._meta, self._buckets, self._engaged = table("meta"), table("buckets"), table("engaged")
        self._spend, self._posts, self._slots = table("spend"), table("posts"), table("slots")
        self._intents, self._errors, self._plans = table("intents"), table("errors"), table("plans")
        self._retries = table("retries")
        self.history = PostHistory(state_dir / HISTORY_FILE, read_only=read_only)
        self._check_schema()

    def close(self) -> None:
        """Release the lock. Everything is already on disk; closing twice is harmless."""
        with self._mutex:
            if not self._closed:
                self._closed = True
                self._db.close()
                if self._lock is not None:
                    self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Self]:
        """Group writes: all of them reach the disk in one atomic write at the end of the block, or
        none does if it raises (e.g. ``record_action`` + ``mark_engaged`` for one like)."""
        with self._mutex:
            if self._closed:
                raise StateError(f"the ledger on {self.state_dir} is closed")
            self._require_writable()
            with self.storage.deferred():
                yield self

    @guarded
    def prune(self, now: datetime) -> None:
        """Drop or shrink records past their retention (see ``Retention``)."""
        self._require_writable()
        with self.storage.deferred():
            self._prune(as_utc(now))

    def _require_writable(self) -> None:
        if self.read_only:
            raise StateError(
                f"the ledger on {self.state_dir} is open read-only (it may belong to a running "
                "agent); open it without read_only to change it"
            )

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        self._require_writable()
        with self.storage.deferred():
            now = self._clock.now()
            if self._last_prune is None or now - self._last_prune >= self.retention.prune_every:
                self._prune(now)
            yield

    @staticmethod
    def _save(table: Table, doc: dict[str, Any], fields: dict[str, Any]) -> None:
        """Update ``doc`` (as found by ``table.get``) with ``fields``, or insert them if there was
        no document (``{}``); by id, so TinyDB does not scan the table again."""
        if isinstance(doc, Document):
            table.update(fields, doc_ids=[doc.doc_id])
        else:
            table.insert(fields)

    def _prune(self, now: datetime) -> None:
        r, today = self.retention, utc_day(now)
        first_day = day_key(today - timedelta(days=r.counter_days))
        first_engaged_day = day_key(today - timedelta(days=r.engaged_days))
        first_id_day = day_key(today - timedelta(days=r.engaged_id_days))
        for doc in self._buckets.all():
            self._trim(self._buckets, doc, _trim_bucket(doc, now, iso(now - r.events), first_day))
        for doc in self._engaged.all():
            kept = {
                "days": _since(doc.get("days", {}), first_engaged_day),
                "ids": _since(doc.get("ids", {}), first_id_day),
                "counterparts": _since(doc.get("counterparts", {}), first_engaged_day),
            }
            self._trim(self._engaged, doc, kept)
        self._engaged_index.clear()
        for doc in self._spend.all():
            self._trim(self._spend, doc, {"days": _since(doc.get("days", {}), first_day)})
        # Posts move by whole UTC days, so history.jsonl grows once a day, not once per post.
        # It is written (durably) first: a crash before ledger.json is saved only means the
        # same posts move again.
        old = self._posts.search(Q.created_at < iso(day_start(now) - timedelta(r.hot_post_days)))
        if old:
            self.history.append([OwnPost.from_doc(d) for d in old])
            self._posts.remove(doc_ids=[d.doc_id for d in old])
        self.history.maintain(now, r)
        closed_before = iso(now - timedelta(days=r.closed_intent_days))
        self._intents.remove((Q.state != "open") & (Q.closed_at < closed_before))
        self._slots.remove(Q.at < iso(now - timedelta(days=r.slot_days)))
        self._retries.remove(Q.at < iso(now - timedelta(days=r.slot_days)))
        plans = sorted(self._plans.all(), key=lambda d: d["saved_at"], reverse=True)
        if len(plans) > r.plans:
            self._plans.remove(doc_ids=[d.doc_id for d in plans[r.plans :]])
        self._last_prune = now

    @staticmethod
    def _trim(table: Table, doc: Document, kept: dict[str, Any]) -> None:
        if any(doc.get(k) != v for k, v in kept.items()):
            table.update(kept, doc_ids=[doc.doc_id])

    def _check_schema(self) -> None:
        doc = self._meta.get(Q.schema.exists())
        if doc is None:
            if not self.read_only:
                self._meta.insert({"schema": SCHEMA})
        elif doc["schema"] > SCHEMA:
            raise StateError(
                f"{self.storage.path} was written by a newer glimpse-agent (schema "
                f"{doc['schema']}, this one reads {SCHEMA}); upgrade glimpse-agent"
            )
