"""``ledger.json`` as TinyDB tables, with the state directory's lock, one mutex and durable writes.

``LedgerStore`` is what every part of the ledger (``actions``, ``engagement``, ``spend``,
``posts``, ``slots``, ``intents``, ``error_log``, ``day_plans``) holds: the tables, the clock and
the retention. A part's public method is ``@guarded`` (one call at a time, never on a closed
store) and changes tables only inside ``store.write()``, which makes the change durable (one
atomic write) before it returns and first prunes if a prune is due. Each part prunes its own
tables; the store only says when (see ``prune_with``).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from tinydb import Query, TinyDB
from tinydb.table import Document, Table

from glimpse_agent.clock import Clock
from glimpse_agent.errors import StateError
from glimpse_agent.ledger.history import PostHistory
from glimpse_agent.ledger.records import Retention, as_utc
from glimpse_agent.ledger.storage import AtomicJSONStorage, StateLock

SCHEMA = 1
LEDGER_FILE = "ledger.json"
HISTORY_FILE = "history.jsonl"

P = ParamSpec("P")
R = TypeVar("R")
Q = Query()

#: Drops or shrinks one part's records past their retention; runs inside the store's write.
Pruner = Callable[[datetime], None]


class LedgerStore:
    """The tables of one state directory, and the rules every change to them follows."""

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
        self.clock = clock
        #: Held for every call (the ledger may be used from a worker thread); reentrant, so a
        #: guarded method may call another.
        self.mutex = threading.RLock()
        self._lock = lock
        self._closed = False
        self._last_prune: datetime | None = None
        self._pruners: tuple[Pruner, ...] = ()
        self.storage = AtomicJSONStorage(state_dir / LEDGER_FILE, read_only=read_only)
        self._db = TinyDB(storage=lambda: self.storage)
        # TinyDB's query cache would go stale when a failed transaction is rolled back, and the
        # storage already answers reads from memory: turn it off.
        table = functools.partial(self._db.table, cache_size=0)
        self._meta, self.buckets, self.engaged = table("meta"), table("buckets"), table("engaged")
        self.spend, self.posts, self.slots = table("spend"), table("posts"), table("slots")
        self.intents, self.errors, self.plans = table("intents"), table("errors"), table("plans")
        self.retries = table("retries")
        self.history = PostHistory(state_dir / HISTORY_FILE, read_only=read_only)
        self._check_schema()

    def prune_with(self, *pruners: Pruner) -> None:
        """The parts' pruners, run in this order by every prune."""
        self._pruners = pruners

    def close(self) -> None:
        """Release the lock. Everything is already on disk; closing twice is harmless."""
        with self.mutex:
            if not self._closed:
                self._closed = True
                self._db.close()
                if self._lock is not None:
                    self._lock.release()

    def require_open(self) -> None:
        if self._closed:
            raise StateError(f"the ledger on {self.state_dir} is closed")

    def require_writable(self) -> None:
        if self.read_only:
            raise StateError(
                f"the ledger on {self.state_dir} is open read-only (it may belong to a running "
                "agent); open it without read_only to change it"
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all of them reach the disk in one atomic write at the end of the block,
        or none does if it raises."""
        with self.mutex:
            self.require_open()
            self.require_writable()
            with self.storage.deferred():
                yield

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """One change, durable when the block ends (or part of the enclosing transaction);
        prunes first if ``prune_every`` has passed since the last prune."""
        self.require_writable()
        with self.storage.deferred():
            now = self.clock.now()
            if self._last_prune is None or now - self._last_prune >= self.retention.prune_every:
                self._prune(now)
            yield

    def prune(self, now: datetime) -> None:
        """Drop or shrink records past their retention (see ``Retention``)."""
        with self.mutex:
            self.require_open()
            self.require_writable()
            with self.storage.deferred():
                self._prune(as_utc(now))

    @staticmethod
    def save(table: Table, doc: dict[str, Any], fields: dict[str, Any]) -> None:
        """Update ``doc`` (as found by ``table.get``) with ``fields``, or insert them if there was
        no document (``{}``); by id, so TinyDB does not scan the table again."""
        if isinstance(doc, Document):
            table.update(fields, doc_ids=[doc.doc_id])
        else:
            table.insert(fields)

    @staticmethod
    def trim(table: Table, doc: Document, kept: dict[str, Any]) -> None:
        """Replace ``doc``'s fields with their pruned values ``kept``, if that changes them."""
        if any(doc.get(k) != v for k, v in kept.items()):
            table.update(kept, doc_ids=[doc.doc_id])

    def _prune(self, now: datetime) -> None:
        for prune in self._pruners:
            prune(now)
        self._last_prune = now

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


class StorePart(Protocol):
    """A part of the ledger: anything that works on a ``LedgerStore``."""

    @property
    def store(self) -> LedgerStore: ...


S = TypeVar("S", bound=StorePart)


def guarded(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Serialize calls on the part's store and refuse a closed ledger."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        store = self.store
        with store.mutex:
            store.require_open()
            return method(self, *args, **kwargs)

    return wrapper


def days_from(by_day: dict[str, Any], first_day: str) -> dict[str, Any]:
    """The entries of a ``UTC day -> value`` map from ``first_day`` on."""
    return {day: v for day, v in by_day.items() if day >= first_day}
