"""``AsyncLedger``: the ledger for asyncio code, every call on one dedicated worker thread."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from glimpse_agent.clock import Clock
from glimpse_agent.ledger.ledger import Ledger
from glimpse_agent.ledger.records import Retention
from glimpse_agent.ledger.spend_book import OffLoopSpendBook

P = ParamSpec("P")
T = TypeVar("T")


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
    retry_reasons = _offload(Ledger.retry_reasons)
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
