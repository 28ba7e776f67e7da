"""``Ledger``: one state directory's store and the parts that work on it, behind one face.

Each public method is one part's method (same signature, same docstring), so callers see a
single object while each part keeps one job: ``ActionLog`` (actions and limits),
``EngagementLog``, ``SpendLog``, ``PostLog``, ``SlotLog``, ``IntentLog``, ``ErrorLog`` and
``DayPlans``, all on one ``LedgerStore`` (tables, lock, mutex, durable writes, retention).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from glimpse_agent.clock import Clock
from glimpse_agent.ledger.actions import ActionLog
from glimpse_agent.ledger.day_plans import DayPlans
from glimpse_agent.ledger.engagement import EngagementLog
from glimpse_agent.ledger.error_log import ErrorLog
from glimpse_agent.ledger.history import PostHistory
from glimpse_agent.ledger.intents import IntentLog
from glimpse_agent.ledger.posts import PostLog
from glimpse_agent.ledger.records import Retention
from glimpse_agent.ledger.slots import SlotLog
from glimpse_agent.ledger.spend import SpendLog
from glimpse_agent.ledger.status import status_view
from glimpse_agent.ledger.storage import AtomicJSONStorage, StateLock, ensure_state_dir
from glimpse_agent.ledger.store import LedgerStore
from glimpse_agent.persona import Persona

P = ParamSpec("P")
T = TypeVar("T")
Part = TypeVar("Part")


def _forward(
    part: Callable[[Ledger], Part], method: Callable[Concatenate[Part, P], T]
) -> Callable[Concatenate[Ledger, P], T]:
    """A ``Ledger`` method that calls ``method`` on the ledger's ``part``."""

    @functools.wraps(method)
    def forwarded(self: Ledger, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return method(part(self), *args, **kwargs)

    return forwarded


class Ledger:
    """The agent's durable memory on one state directory (see the package docstring).

    Every method is thread-safe, and one that changes something returns only once the change is
    durable on disk; ``transaction()`` groups several changes into one write.
    """

    def __init__(self, store: LedgerStore) -> None:
        """Use ``Ledger.open``: it takes the directory's lock first."""
        self.store = store
        self._actions = ActionLog(store)
        self._engagement = EngagementLog(store)
        self._spend = SpendLog(store)
        self._posts = PostLog(store)
        self._slots = SlotLog(store)
        self._intents = IntentLog(store, self._posts)
        self._errors = ErrorLog(store)
        self._plans = DayPlans(store)
        store.prune_with(
            self._actions.prune,
            self._engagement.prune,
            self._spend.prune,
            self._posts.prune,
            self._intents.prune,
            self._slots.prune,
            self._plans.prune,
        )

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
        retention = retention or Retention()
        if read_only:
            store = LedgerStore(state_dir, lock=None, clock=clock, retention=retention,
                                read_only=True)  # fmt: skip
            return cls(store)
        lock = StateLock(ensure_state_dir(state_dir)).acquire()
        try:
            return cls(LedgerStore(state_dir, lock=lock, clock=clock, retention=retention))
        except BaseException:
            lock.release()
            raise

    # ------------------------------------------------------------------ the store

    @property
    def state_dir(self) -> Path:
        return self.store.state_dir

    @property
    def retention(self) -> Retention:
        return self.store.retention

    @property
    def read_only(self) -> bool:
        return self.store.read_only

    @property
    def storage(self) -> AtomicJSONStorage:
        return self.store.storage

    @property
    def history(self) -> PostHistory:
        return self.store.history

    def close(self) -> None:
        """Release the lock. Everything is already on disk; closing twice is harmless."""
        self.store.close()

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
        with self.store.transaction():
            yield self

    def prune(self, now: datetime) -> None:
        """Drop or shrink records past their retention (see ``Retention``)."""
        self.store.prune(now)

    def status_view(self, now: datetime, persona: Persona) -> dict[str, Any]:
        """A JSON-able summary for ``glimpse-agent status``: quotas, spend, posts, errors."""
        with self.store.mutex:  # one consistent picture, not reads interleaved with writes
            return status_view(self, now, persona)

    # ------------------------------------------------------------------ actions and limits

    record_action = _forward(lambda x: x._actions, ActionLog.record_action)
    events = _forward(lambda x: x._actions, ActionLog.events)
    count_on = _forward(lambda x: x._actions, ActionLog.count_on)
    usage = _forward(lambda x: x._actions, ActionLog.usage)
    remaining = _forward(lambda x: x._actions, ActionLog.remaining)
    next_free = _forward(lambda x: x._actions, ActionLog.next_free)
    remaining_all = _forward(lambda x: x._actions, ActionLog.remaining_all)
    note_server_limit = _forward(lambda x: x._actions, ActionLog.note_server_limit)
    note_rate_limited = _forward(lambda x: x._actions, ActionLog.note_rate_limited)

    # ------------------------------------------------------------------ engaged items

    has_engaged = _forward(lambda x: x._engagement, EngagementLog.has_engaged)
    mark_engaged = _forward(lambda x: x._engagement, EngagementLog.mark_engaged)
    engaged_ids = _forward(lambda x: x._engagement, EngagementLog.engaged_ids)
    replies_to_counterpart = _forward(lambda x: x._engagement, EngagementLog.replies_to_counterpart)
    replies_by_counterpart = _forward(lambda x: x._engagement, EngagementLog.replies_by_counterpart)
    mark_comment_seen = _forward(lambda x: x._engagement, EngagementLog.mark_comment_seen)
    seen_comment = _forward(lambda x: x._engagement, EngagementLog.seen_comment)

    # ------------------------------------------------------------------ spend

    record_spend = _forward(lambda x: x._spend, SpendLog.record_spend)
    spent_on = _forward(lambda x: x._spend, SpendLog.spent_on)

    # ------------------------------------------------------------------ own posts

    add_post = _forward(lambda x: x._posts, PostLog.add_post)
    recent_posts = _forward(lambda x: x._posts, PostLog.recent_posts)
    posts_on = _forward(lambda x: x._posts, PostLog.posts_on)
    prompts_since = _forward(lambda x: x._posts, PostLog.prompts_since)
    ideas_since = _forward(lambda x: x._posts, PostLog.ideas_since)

    # ------------------------------------------------------------------ planned slots

    mark_slot_done = _forward(lambda x: x._slots, SlotLog.mark_slot_done)
    slot_done = _forward(lambda x: x._slots, SlotLog.slot_done)
    done_slots = _forward(lambda x: x._slots, SlotLog.done_slots)
    plan_retry = _forward(lambda x: x._slots, SlotLog.plan_retry)
    planned_retries = _forward(lambda x: x._slots, SlotLog.planned_retries)
    retry_reasons = _forward(lambda x: x._slots, SlotLog.retry_reasons)

    # ------------------------------------------------------------------ write-ahead intents

    begin_intent = _forward(lambda x: x._intents, IntentLog.begin_intent)
    settle_intent = _forward(lambda x: x._intents, IntentLog.settle_intent)
    abandon_intent = _forward(lambda x: x._intents, IntentLog.abandon_intent)
    unsettled_intents = _forward(lambda x: x._intents, IntentLog.unsettled_intents)

    # ------------------------------------------------------------------ errors and day plans

    record_error = _forward(lambda x: x._errors, ErrorLog.record_error)
    last_errors = _forward(lambda x: x._errors, ErrorLog.last_errors)
    save_plan = _forward(lambda x: x._plans, DayPlans.save_plan)
    load_plan = _forward(lambda x: x._plans, DayPlans.load_plan)
