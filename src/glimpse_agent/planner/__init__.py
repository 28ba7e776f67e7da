"""Pure decisions: the day's plan, when each slot runs, the next post idea, which posts to
engage with.

The planner never does I/O and never reads the clock: every function is handed ``now`` (aware),
the persona and read-only views (or a callback such as ``left_at``), and returns frozen
dataclasses. Same inputs, same output — including after a restart, because all "randomness" is
a SHA-256 of (persona name, day, ...).

This module is the public face of:

- active hours and the DST rule: ``window`` (``active_window``, ``is_active``,
  ``days_to_plan``, ``next_local_midnight``);
- the day's slots: ``dayplan`` (``plan_day``, ``posts_allowed``, ``posts_that_fit``,
  ``sessions_remaining``);
- when each slot runs (on time, late within the grace, retry, made up, missed): ``schedule``
  (``schedule_slots``, ``place_post``), shared by the daemon, the simulation and ``plan``;
- one local day as the daemon plans it: ``openday`` (``plan_open_day``), shared by the agent
  and ``plan``;
- post ideas: ``ideas`` (``next_idea``, ``is_repeat``, ``is_repeat_of``);
- engagement: ``engagement`` (``plan_engagement`` and its decision types).

May import only ``persona`` (and the standard library).
"""

from __future__ import annotations

from glimpse_agent.planner.dayplan import (
    DEFAULT_GRACE_MINUTES,
    ENGAGE_CLEARANCE,
    DayPlan,
    Slot,
    SlotKind,
    plan_day,
    post_buckets,
    posts_allowed,
    posts_that_fit,
    sessions_remaining,
)
from glimpse_agent.planner.engagement import (
    BUCKETS,
    CandidatePost,
    Comment,
    Decision,
    EngagementView,
    Follow,
    IncomingComment,
    Interests,
    Like,
    Reply,
    plan_engagement,
    relevance,
    score_post,
    session_share,
    split_comments,
)
from glimpse_agent.planner.ideas import (
    IDEA_MEMORY,
    PastIdea,
    PostIdea,
    angle_cores,
    is_repeat,
    is_repeat_of,
    next_idea,
)
from glimpse_agent.planner.openday import OpenDay, plan_open_day
from glimpse_agent.planner.schedule import (
    LATE_STEP,
    MakeUp,
    Schedule,
    SlotDecision,
    place_post,
    schedule_slots,
)
from glimpse_agent.planner.window import (
    active_window,
    days_to_plan,
    is_active,
    next_local_midnight,
    wall_to_utc,
)

__all__ = [
    "BUCKETS",
    "DEFAULT_GRACE_MINUTES",
    "ENGAGE_CLEARANCE",
    "IDEA_MEMORY",
    "LATE_STEP",
    "CandidatePost",
    "Comment",
    "DayPlan",
    "Decision",
    "EngagementView",
    "Follow",
    "IncomingComment",
    "Interests",
    "Like",
    "MakeUp",
    "OpenDay",
    "PastIdea",
    "PostIdea",
    "Reply",
    "Schedule",
    "Slot",
    "SlotDecision",
    "SlotKind",
    "active_window",
    "angle_cores",
    "days_to_plan",
    "is_active",
    "is_repeat",
    "is_repeat_of",
    "next_idea",
    "next_local_midnight",
    "place_post",
    "plan_day",
    "plan_engagement",
    "plan_open_day",
    "post_buckets",
    "posts_allowed",
    "posts_that_fit",
    "relevance",
    "schedule_slots",
    "score_post",
    "session_share",
    "sessions_remaining",
    "split_comments",
    "wall_to_utc",
]
