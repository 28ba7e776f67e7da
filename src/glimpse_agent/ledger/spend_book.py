"""``OffLoopSpendBook``: the image router's budget book, writing on the ledger's worker thread."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

from glimpse_agent.ledger.ledger import Ledger
from glimpse_agent.ledger.records import utc_day
from glimpse_agent.logs import get_logger

log = get_logger("glimpse_agent.ledger")


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
