"""The day's plan: when to post and when to run engagement sessions, as UTC instants.

Deterministic by construction: every jitter comes from a SHA-256 of (persona name, local day,
slot kind, slot number), never from the clock or a salted ``hash()``, so a restart that
re-plans the same day with the same inputs gets the same slot ids and times, and the ledger's
"done" slot ids keep matching.

Placement. The active window (see ``window``) is cut into ``n`` equal cells, one per post; each
post sits at its cell's centre, moved by at most ``jitter_minutes``, and the jitter is shrunk
so that consecutive posts stay ``min_gap`` apart and at least ``min_gap / 2`` inside the window
edges (so the gap also holds across consecutive days). If the window cannot hold ``n`` posts
``min_gap`` apart, fewer are planned. Engagement sessions get their own equal cells, sitting a
quarter of the way in (so equal counts do not stack sessions on posts), and are then nudged to
stay ``ENGAGE_CLEARANCE`` away from every post; a session with no room left for that is dropped.
Sessions are numbered in time order after nudging.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from glimpse_agent.persona import Persona
from glimpse_agent.planner._text import stable_int
from glimpse_agent.planner.window import active_window

SlotKind = Literal["post", "engage"]

# A slot that fired while the process was down still runs if it is at most this late.
DEFAULT_GRACE_MINUTES = 15.0
# Posting and engaging in the same minute looks robotic and competes for the same rate limits.
ENGAGE_CLEARANCE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Slot:
    """One planned action. ``slot_id`` is ``"<local day>/<kind>/<n>"``, n counting from 1."""

    slot_id: str
    kind: SlotKind
    at: datetime  # aware, UTC


@dataclass(frozen=True, slots=True)
class DayPlan:
    """The still-to-do slots of one local day, sorted by time."""

    local_day: date
    slots: tuple[Slot, ...]

    @property
    def posts(self) -> tuple[Slot, ...]:
        return tuple(s for s in self.slots if s.kind == "post")

    @property
    def sessions(self) -> tuple[Slot, ...]:
        return tuple(s for s in self.slots if s.kind == "engage")


def plan_day(
    persona: Persona,
    local_day: date,
    *,
    posts_allowed: int,
    sessions: int | None = None,
    jitter_minutes: float = 20,
    min_gap_minutes: int | None = None,
    done_slot_ids: frozenset[str] = frozenset(),
    now: datetime | None = None,
    grace_minutes: float = DEFAULT_GRACE_MINUTES,
) -> DayPlan:
    """Plan ``local_day``: post slots and engagement-session slots inside its active window.

    - ``posts_allowed`` is the day's total (done ones included); at most
      ``min(posts_allowed, persona.posts_per_day)`` posts are planned, fewer if the window cannot
      hold them ``min_gap_minutes`` (default: the persona's) apart.
    - ``sessions`` defaults to ``persona.engagement.sessions_per_day``.
    - Slots whose id is in ``done_slot_ids`` are left out; with ``now``, so are slots more than
      ``grace_minutes`` in the past (a slot less late than that is kept: the caller runs it now).
    - Same arguments, same plan: ids and times do not depend on ``done_slot_ids`` or ``now``.
    """
    start, end = active_window(persona, local_day)
    span = int((end - start).total_seconds())
    day = local_day.isoformat()
    jitter = max(0, int(jitter_minutes * 60))
    gap = 60 * (persona.min_post_gap_minutes if min_gap_minutes is None else min_gap_minutes)
    gap = max(0, gap)

    n_posts = _post_count(min(posts_allowed, persona.posts_per_day), span, gap)
    # Posts sit mid-cell, sessions a quarter in, so equal counts do not put them on top of each
    # other.
    post_offsets = _spread(n_posts, span, jitter, gap, quarter=2, seed=(persona.name, day, "post"))
    posts = [start + timedelta(seconds=s) for s in post_offsets]

    n_sessions = persona.engagement.sessions_per_day if sessions is None else sessions
    session_offsets = _spread(
        max(0, n_sessions), span, jitter, 0, quarter=1, seed=(persona.name, day, "engage")
    )
    engage = sorted(
        t
        for t in (
            _clear_of_posts(start + timedelta(seconds=s), posts, start, end)
            for s in session_offsets
        )
        if t is not None
    )

    slots = [Slot(f"{day}/post/{i}", "post", at) for i, at in enumerate(posts, 1)]
    slots += [Slot(f"{day}/engage/{i}", "engage", at) for i, at in enumerate(engage, 1)]
    cutoff = None if now is None else now - timedelta(minutes=grace_minutes)
    kept = (
        s for s in slots if s.slot_id not in done_slot_ids and (cutoff is None or s.at >= cutoff)
    )
    return DayPlan(local_day, tuple(sorted(kept, key=lambda s: (s.at, s.slot_id))))


#: The buckets one post spends: always ``posts``; ``generation`` only when Glimpse's own generator
#: is the whole image chain (see ``post_buckets``).
POST_BUCKETS = ("posts", "generation")


def post_buckets(image_order: Sequence[str]) -> tuple[str, ...]:
    """The buckets a post must find room in, for an image chain tried in ``image_order``. Only
    Glimpse's generator spends ``generation`` (six a day); with another backend in the chain, an
    empty ``generation`` bucket only means that one is skipped, so it must not shrink the plan."""
    if image_order and all(name == "glimpse" for name in image_order):
        return POST_BUCKETS
    return ("posts",)


def _room(left: Mapping[str, int], buckets: Sequence[str]) -> int:
    return min(left.get(b, 0) for b in buckets)


def posts_allowed(
    persona: Persona,
    posted: int,
    left: Mapping[str, int],
    *,
    buckets: Sequence[str] = POST_BUCKETS,
) -> int:
    """The day's post total to plan (``plan_day``'s ``posts_allowed``): the ``posted`` ones
    plus what the post's ``buckets`` (``post_buckets``) still allow (``left``, as it will stand
    when the day's window opens), never more than ``persona.posts_per_day``."""
    return max(0, min(persona.posts_per_day, posted + _room(left, buckets)))


def posts_that_fit(
    persona: Persona,
    local_day: date,
    *,
    done: frozenset[str],
    floor: int,
    left_at: Callable[[datetime], Mapping[str, int]],
    jitter_minutes: float = 20,
    buckets: Sequence[str] = POST_BUCKETS,
) -> int:
    """The largest day total (at most ``posts_per_day``, at least ``floor``, usually
    ``posts_allowed``) whose post slots not yet ``done`` fit the ``posts`` and ``generation``
    quotas of each UTC day they fall on; ``left_at(t)`` is what is left at ``t``. A window that
    spans midnight UTC spends two UTC days' quotas: judged only by what is left when it opens,
    it would plan too few whenever the previous window's late posts used part of that day."""
    for n in range(persona.posts_per_day, floor, -1):
        plan = plan_day(persona, local_day, posts_allowed=n, jitter_minutes=jitter_minutes)
        by_day: dict[date, list[datetime]] = {}
        for s in plan.posts:
            if s.slot_id not in done:
                by_day.setdefault(s.at.astimezone(UTC).date(), []).append(s.at)
        if all(
            len(times) <= _room(left, buckets)
            for times in by_day.values()
            for left in (left_at(min(times)),)
        ):
            return n
    return floor


def sessions_remaining(plan: DayPlan, now: datetime) -> int:
    """Engagement sessions left today counting the one running now (so at least 1).

    Feed it to ``EngagementView.sessions_remaining`` so a day's quota is spread over the day.
    """
    return 1 + sum(1 for s in plan.sessions if s.at > now)


def _post_count(wanted: int, span: int, gap: int) -> int:
    if wanted <= 0 or span <= 0:
        return 0
    if gap <= 0 or wanted == 1:
        return wanted
    # Cells must be at least ``gap`` wide for the centres to be ``gap`` apart.
    return max(1, min(wanted, span // gap))


def _spread(
    n: int, span: int, jitter: int, gap: int, *, quarter: int, seed: tuple[str, str, str]
) -> list[int]:
    """``n`` offsets (seconds from the window start), one per equal cell, sorted.

    Each sits ``quarter``/4 of the way into its cell, moved by a deterministic jitter. Offsets
    stay in ``[0, span)`` and consecutive ones at least ``gap`` apart; with ``quarter=2``
    (centres) they also stay at least ``gap // 2`` from both ends once a cell is ``gap`` wide.
    """
    if n <= 0 or span <= 0:
        return []
    cell = span / n
    # Anchors are floor((4i+q)·span / 4n) in integer maths: consecutive ones are at least
    # floor(cell) apart, the first is floor(q·cell/4) after the start and the last
    # ceil((4-q)·cell/4) before the end. Capping the jitter at half of (floor(cell) - gap)
    # keeps the gap, and the edge caps keep every slot inside [start, end).
    bound = min(
        jitter,
        max(0, (math.floor(cell) - gap) // 2),
        (quarter * span) // (4 * n),
        max(0, -((-(4 - quarter) * span) // (4 * n)) - 1),
    )
    offsets = []
    for i in range(n):
        anchor = ((4 * i + quarter) * span) // (4 * n)
        shift = stable_int(*seed, str(i)) % (2 * bound + 1) - bound if bound else 0
        offsets.append(anchor + shift)
    return offsets


def _clear_of_posts(
    at: datetime, posts: list[datetime], start: datetime, end: datetime
) -> datetime | None:
    """``at`` if no post is within ``ENGAGE_CLEARANCE``, else the nearest time that is, or None."""

    def clear(t: datetime) -> bool:
        return start <= t < end and all(abs(t - p) >= ENGAGE_CLEARANCE for p in posts)

    if clear(at):
        return at
    candidates = [p + d for p in posts for d in (-ENGAGE_CLEARANCE, ENGAGE_CLEARANCE)]
    fitting = [c for c in candidates if clear(c)]
    if not fitting:
        return None
    # Nearest wins; on a tie the earlier one, so the result never depends on list order.
    return min(fitting, key=lambda c: (abs(c - at), c))
