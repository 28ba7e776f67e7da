"""The ledger: what the agent must remember across restarts and crashes.

The room owns the **store** (``store``: ``ledger.json``'s TinyDB tables, the state directory's
lock, one mutex, durable one-write changes and transactions, the prune schedule; ``storage``: the
atomic file and the lock file; ``history``: older posts in ``history.jsonl``), the **records**
(``records``: what is stored, and ``Retention``, how long), the parts that keep them — actions
and limits (``actions``), engaged items (``engagement``), spend (``spend``), own posts
(``posts``), planned slots (``slots``), write-ahead intents (``intents``), the last errors
(``error_log``), day plans (``day_plans``) — and the ``status`` summary. ``Ledger`` (``ledger``)
puts them behind one face; ``AsyncLedger`` (``async_ledger``) runs it on a worker thread for
asyncio code, ``OffLoopSpendBook`` (``spend_book``) serves the image router's budget.

Every ``Ledger`` method returns only once its change is durable on disk (one atomic write;
``transaction()`` groups several changes into one). Records age out automatically (see
``Retention``; a prune runs at most once per ``prune_every`` on a write), so ``ledger.json`` stays
around 200 KB for years. Files in the state directory: ``ledger.json`` (+ ``.bak``),
``history.jsonl`` and ``lock``.

It may import ``glimpse_agent.clock``, ``errors``, ``limits``, ``logs``, ``persona``,
``redaction`` and ``tinydb``; never httpx, ``glimpse``, ``agent`` or anything above it.
"""

from __future__ import annotations

from glimpse_agent.ledger.async_ledger import AsyncLedger
from glimpse_agent.ledger.ledger import Ledger
from glimpse_agent.ledger.records import (
    ErrorEntry,
    IdeaRecord,
    Intent,
    OwnPost,
    PastPrompt,
    Retention,
)
from glimpse_agent.ledger.spend_book import OffLoopSpendBook

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
