"""The ledger: what the agent must remember across restarts and crashes.

One ``Ledger`` per state directory (it holds the directory's lock). It records:

- **actions** per rate-limit bucket (raw instants for 48 h, per-day counters for a year), the
  server's rate-limit headers and 429 blocks, and answers "what is left" through ``limits``;
- **own posts** (and which planned slots are done), **engaged items** (liked, commented, replied,
  followed, comments seen), **spend** per UTC day, **write-ahead intents**, the **day plan** and the
  **last errors**.

Every method is synchronous and returns only once its change is durable on disk (one atomic
write; ``transaction()`` groups several changes into one). Records age out automatically (see
``Retention``; ``prune`` runs at most once per ``prune_every`` on a write), so ``ledger.json``
stays around 200 KB for years. From asyncio code, go through ``AsyncLedger``.

Files in the state directory: ``ledger.json`` (+ ``.bak``), ``history.jsonl`` (older
posts, see ``ledger_history``) and ``lock``.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from glimpse_agent.clock import Clock
from glimpse_agent.ledger.activity import LedgerActivity
from glimpse_agent.ledger.journal import LedgerJournal
from glimpse_agent.ledger.records import (
    ErrorEntry,
    IdeaRecord,
    Intent,
    OwnPost,
    PastPrompt,
    Retention,
    utc_day,
)
from glimpse_agent.ledger.status import status_view
from glimpse_agent.ledger.storage import StateLock, ensure_state_dir
from glimpse_agent.logs import get_logger
from glimpse_agent.persona import Persona

__all__ = [
    "AsyncLedger",
    "ErrorEntry",
    "IdeaRecord",
    "Intent",
    "Ledger",
    "OffLoopSpendBook",
    "OwnPost",
    "PastPrompt",
    "Retention",
]

P = ParamSpec("P")
T = TypeVar("T")
log = get_logger("glimpse_agent.ledger")


class Ledger(LedgerActivity, LedgerJournal):
    """The agent's durable memory on one state directory. See the module docstring; the methods
    live in ``ledger_activity`` (actions, limits, engagement, spend) and ``ledger_journal`` (posts,
    slots, intents, errors, plans)."""

    @classmethod
    def open(
        cls,
        state_dir: Path,
        *,
        clock: Clock,
        retention: Retention | None = None,
        read_only: bool = False,
    ) -> Ledger:
        """Lock ``state_dir`` (created 0700 if needed) and open its ledger. Raises ``StateLocked``
        if another process holds it, ``StateCorrupt`` if the store is unreadable with no backup.

        ``read_only`` (``status``, ``plan``) takes no lock, so it works while the agent runs:
        it reads the last complete write, never writes, prunes or repairs, and every changing
        method raises ``StateError``. A missing state directory reads as empty."""
        state_dir = Path(state_dir)
        if read_only:
            return cls(state_dir, lock=None, clock=clock, retention=retention or Retention(),
                       read_only=True)  # fmt: skip
        lock = StateLock(ensure_state_dir(state_dir)).acquire()
        try:
            return cls(state_dir, lock=lock, clock=clock, retention=retention or Retention())
        except BaseException:
            lock.release()
            raise

    def status_view(self, now: datetime, persona: Persona) -> dict[str, Any]:
        """A JSON-able summary for ``glimpse-agent status``: quotas, spend, posts, errors."""
        with self._mutex:
            return status_view(self, now, persona)


def _offload(
    method: Callable[Concatenate[Ledger, P], T],
) -> Callable[Concatenate[AsyncLedger, P], Coroutine[Any, Any, T]]:
    """An ``AsyncLedger`` method that runs ``Ledger.<method>`` on the worker thread."""

    @functools.wraps(method)
    async def offloaded(self: AsyncLedger, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.run(method, *args, **kwargs)

    return offloaded


class AsyncLedger:
    """A ``Ledger`` for asyncio code: every call runs on one dedicated worker thread, so file I/O
    never blocks the event loop, and calls run one at a time in the order they were made.

        ledger = await AsyncLedger.open(state_dir, clock=clock)   # or AsyncLedger(Ledger.open(...))
        await ledger.record_action("posts", now, ref=post_id)
        left = await ledger.remaining_all(now, persona)
        await ledger.aclose()

    Every ``Ledger`` method has an awaitable twin here; ``run(fn, ...)`` runs any function of the
    ledger (e.g. several calls in one ``transaction()``) on the same thread. The sync ``Ledger``
    stays usable from the loop for quick calls (it is thread-safe); a call whose awaiting task is
    cancelled may still complete on the worker thread.
    """

    def __init__(self, ledger: Ledger, *, executor: ThreadPoolExecutor | None = None) -> None:
        self.ledger = ledger
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="ledger")

    @classmethod
    async def open(
        cls, state_dir: Path, *, clock: Clock, retention: Retention | None = None
    ) -> AsyncLedger:
        """``Ledger.open`` on the worker thread, wrapped."""
        executor = ThreadPoolExecutor(1, thread_name_prefix="ledger")
        opener = functools.partial(Ledger.open, state_dir, clock=clock, retention=retention)
        try:
            ledger = await asyncio.get_running_loop().run_in_executor(executor, opener)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(ledger, executor=executor)

    async def run(
        self, fn: Callable[Concatenate[Ledger, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(ledger, *args, **kwargs)`` on the ledger's worker thread."""
        call = functools.partial(fn, self.ledger, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def spend_book(self) -> OffLoopSpendBook:
        """A synchronous ``SpendBook`` (for the image router) whose writes run on the worker
        thread instead of the caller's event loop."""
        return OffLoopSpendBook(self.ledger, self._executor)

    async def aclose(self) -> None:
        """Close the ledger (after every call already queued) and stop the worker thread."""
        await self.run(Ledger.close)
        self._executor.shutdown(wait=True)

    record_action = _offload(Ledger.record_action)
    events = _offload(Ledger.events)
    count_on = _offload(Ledger.count_on)
    usage = _offload(Ledger.usage)
    remaining = _offload(Ledger.remaining)
    next_free = _offload(Ledger.next_free)
    remaining_all = _offload(Ledger.remaining_all)
    note_server_limit = _offload(Ledger.note_server_limit)
    note_rate_limited = _offload(Ledger.note_rate_limited)
    has_engaged = _offload(Ledger.has_engaged)
    mark_engaged = _offload(Ledger.mark_engaged)
    engaged_ids = _offload(Ledger.engaged_ids)
    replies_to_counterpart = _offload(Ledger.replies_to_counterpart)
    replies_by_counterpart = _offload(Ledger.replies_by_counterpart)
    mark_comment_seen = _offload(Ledger.mark_comment_seen)
    seen_comment = _offload(Ledger.seen_comment)
    record_spend = _offload(Ledger.record_spend)
    spent_on = _offload(Ledger.spent_on)
    add_post = _offload(Ledger.add_post)
    recent_posts = _offload(Ledger.recent_posts)
    posts_on = _offload(Ledger.posts_on)
    prompts_since = _offload(Ledger.prompts_since)
    ideas_since = _offload(Ledger.ideas_since)
    mark_slot_done = _offload(Ledger.mark_slot_done)
    slot_done = _offload(Ledger.slot_done)
    done_slots = _offload(Ledger.done_slots)
    plan_retry = _offload(Ledger.plan_retry)
    planned_retries = _offload(Ledger.planned_retries)
    begin_intent = _offload(Ledger.begin_intent)
    settle_intent = _offload(Ledger.settle_intent)
    abandon_intent = _offload(Ledger.abandon_intent)
    unsettled_intents = _offload(Ledger.unsettled_intents)
    record_error = _offload(Ledger.record_error)
    last_errors = _offload(Ledger.last_errors)
    save_plan = _offload(Ledger.save_plan)
    load_plan = _offload(Ledger.load_plan)
    status_view = _offload(Ledger.status_view)
    prune = _offload(Ledger.prune)


class OffLoopSpendBook:
    """``record_spend``/``spent_on`` for code that cannot await (the image router's budget).

    ``record_spend`` queues the durable write on the ledger's worker thread and returns at
    once, so the event loop never waits for an fsync; until that write lands, ``spent_on``
    counts the queued amount too, so the budget is never overrun in between.
    """

    def __init__(self, ledger: Ledger, executor: ThreadPoolExecutor) -> None:
        self._ledger = ledger
        self._executor = executor
        self._pending: dict[date, float] = {}
        self._lock = threading.Lock()

    def spent_on(self, day: date) -> float:
        with self._lock:
            pending = self._pending.get(day, 0.0)
        return round(self._ledger.spent_on(day) + pending, 6)

    def record_spend(self, amount_usd: float, *, backend: str, at: datetime) -> None:
        day = utc_day(at)
        if not math.isfinite(amount_usd) or amount_usd < 0:
            raise ValueError(f"amount_usd must be a finite amount >= 0, got {amount_usd!r}")
        with self._lock:
            self._pending[day] = self._pending.get(day, 0.0) + amount_usd
        self._executor.submit(self._write, amount_usd, backend, at, day)

    def _write(self, amount_usd: float, backend: str, at: datetime, day: date) -> None:
        try:
            self._ledger.record_spend(amount_usd, backend=backend, at=at)
        except Exception as exc:  # the caller is long gone: say it loudly, keep the tally
            log.error("spend_not_recorded", backend=backend, amount_usd=amount_usd, error=str(exc))
            return
        with self._lock:
            left = self._pending.get(day, 0.0) - amount_usd
            if left > 1e-12:
                self._pending[day] = left
            else:
                self._pending.pop(day, None)
