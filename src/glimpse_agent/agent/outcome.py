"""``Outcome``: what one action did, for logs, `once`, the daemon and the simulation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Outcome:
    """What one action did, for logs, `once` and the simulation summary."""

    kind: str
    ok: bool = True
    detail: str = ""
    post_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    #: A failed post that waiting may fix (no image backend answered; Glimpse said 429) and
    #: that certainly did not post: seconds after which trying again makes sense.
    retry_after: float | None = None
    #: When the slot runs again (set by ``run_slot`` when it plans a retry), else None.
    retry_at: datetime | None = None
