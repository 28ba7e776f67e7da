"""Pure decisions: the day's plan, the next post idea, which posts to engage with.

The planner never does I/O and never reads the clock: every function is handed ``now`` (aware),
the persona and read-only views, and returns frozen dataclasses. Same inputs, same output —
including after a restart, because all "randomness" is a SHA-256 of (persona name, day, ...).

The code lives in ``glimpse_agent.planning``; this module is the public face:

- active hours and the DST rule: ``planning.window`` (``active_window``, ``is_active``,
  ``days_to_plan``, ``next_local_midnight``);
- the day's slots: ``planning.dayplan`` (``plan_day``, ``posts_allowed``, ``sessions_remaining``);
- post ideas: ``planning.ideas`` (``next_idea``, ``is_repeat``, ``is_repeat_of``);
- engagement: ``planning.engagement`` (``plan_engagement`` and its decision types).
"""

from __future__ import annotations

from glimpse_agent.planner.dayplan import (
    DEFAULT_GRACE_MINUTES,
    ENGAGE_CLEARANCE,
    DayPlan,
    Slot,
    SlotKind,
    plan_day,
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
    "CandidatePost",
    "Comment",
    "DayPlan",
    "Decision",
    "EngagementView",
    "Follow",
    "IncomingComment",
    "Interests",
    "Like",
    "PastIdea",
    "PostIdea",
    "Reply",
    "Slot",
    "SlotKind",
    "active_window",
    "angle_cores",
    "days_to_plan",
    "is_active",
    "is_repeat",
    "is_repeat_of",
    "next_idea",
    "next_local_midnight",
    "plan_day",
    "plan_engagement",
    "posts_allowed",
    "posts_that_fit",
    "relevance",
    "score_post",
    "session_share",
    "sessions_remaining",
    "split_comments",
    "wall_to_utc",
]
