"""Property-style checks over many seeded random personas, days and views (no hypothesis needed)."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from glimpse_agent.persona import Engagement, Persona
from glimpse_agent.planner import (
    ENGAGE_CLEARANCE,
    CandidatePost,
    Comment,
    EngagementView,
    Follow,
    IncomingComment,
    Like,
    Reply,
    active_window,
    plan_day,
    plan_engagement,
    session_share,
)

ZONES = [
    "UTC",
    "Asia/Tokyo",
    "Europe/Paris",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
]
# Days that include every 2026 DST switch of the zones above, plus ordinary ones.
DAYS = [
    date(2026, 3, 8),
    date(2026, 3, 28),
    date(2026, 3, 29),
    date(2026, 4, 4),
    date(2026, 4, 5),
    date(2026, 9, 6),
    date(2026, 9, 27),
    date(2026, 10, 4),
    date(2026, 10, 25),
    date(2026, 11, 1),
    date(2026, 6, 15),
    date(2026, 12, 31),
]


def random_persona(rng: random.Random, i: int) -> Persona:
    start, end = rng.sample(range(0, 24 * 60, 10), 2)
    return Persona(
        name=f"p{i}",
        topics=["lighthouses"],
        timezone=rng.choice(ZONES),
        active_hours=(f"{start // 60:02}:{start % 60:02}", f"{end // 60:02}:{end % 60:02}"),
        posts_per_day=rng.randint(0, 6),
        min_post_gap_minutes=rng.choice([0, 15, 45, 90, 180]),
        engagement=Engagement(sessions_per_day=rng.randint(0, 12)),
    )


@pytest.mark.parametrize("seed", range(8))
def test_random_plans_keep_every_invariant(seed: int) -> None:
    """For random personas on DST and ordinary days: inside the window, apart, capped, stable."""
    rng = random.Random(seed)
    for i in range(60):
        who = random_persona(rng, i)
        day = rng.choice(DAYS)
        allowed = rng.randint(-1, 7)
        jitter = rng.choice([0, 5, 20, 120])
        plan = plan_day(who, day, posts_allowed=allowed, jitter_minutes=jitter)
        start, end = active_window(who, day)
        assert start <= end
        assert all(start <= s.at < end for s in plan.slots), (who, day)
        posts = [s.at for s in plan.posts]
        wanted = max(0, min(allowed, who.posts_per_day))
        assert len(posts) <= wanted
        # A window that holds ``wanted`` gap-wide slices gets every post.
        if end - start >= timedelta(minutes=who.min_post_gap_minutes) * wanted and end > start:
            assert len(posts) == wanted
        for a, b in itertools.pairwise(posts):
            assert b - a >= timedelta(minutes=who.min_post_gap_minutes)
        for s in plan.sessions:
            assert all(abs(s.at - p) >= ENGAGE_CLEARANCE for p in posts)
        assert len(plan.sessions) <= who.engagement.sessions_per_day
        again = plan_day(who, day, posts_allowed=allowed, jitter_minutes=jitter)
        assert again == plan


NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
AGENTS = [f"agent-{i}" for i in range(6)]
WORDS = ["neon", "puddle", "train", "platform", "cat", "rain", "night", "reflection", "field"]


def random_view(rng: random.Random) -> EngagementView:
    me = rng.choice(AGENTS)
    posts = tuple(
        CandidatePost(
            post_id=f"p{rng.randint(0, 30)}",
            seq=rng.randint(1, 1000),
            author_id=rng.choice(AGENTS),
            author_name="x",
            caption=" ".join(rng.choices(WORDS, k=rng.randint(0, 8))),
            hashtags=tuple(rng.sample(["#neon", "#nightcity", "#cats", "#art"], rng.randint(0, 2))),
            like_count=rng.randint(0, 500),
            comment_count=rng.randint(0, 50),
            created_at=NOW - timedelta(hours=rng.uniform(0, 100)),
            source="timeline",
        )
        for _ in range(rng.randint(0, 40))
    )
    comments = tuple(
        IncomingComment(
            comment_id=f"c{rng.randint(0, 30)}",
            post_id="mine",
            author_id=rng.choice(AGENTS),
            author_name="x",
            content="nice",
            created_at=NOW - timedelta(hours=rng.uniform(0, 100)),
        )
        for _ in range(rng.randint(0, 20))
    )
    return EngagementView(
        self_agent_id=me,
        candidates=posts,
        followed_ids=frozenset(rng.sample(AGENTS, rng.randint(0, 3))),
        liked_post_ids=frozenset(f"p{rng.randint(0, 30)}" for _ in range(rng.randint(0, 10))),
        commented_post_ids=frozenset(f"p{rng.randint(0, 30)}" for _ in range(rng.randint(0, 5))),
        new_followers=tuple((rng.choice(AGENTS), "x") for _ in range(rng.randint(0, 5))),
        incoming_comments=comments,
        replies_today={a: rng.randint(0, 3) for a in rng.sample(AGENTS, 2)},
        left={b: rng.randint(0, 20) for b in ("reactions", "comments", "follows")},
        sessions_remaining=rng.randint(1, 8),
        replied_comment_ids=frozenset(f"c{rng.randint(0, 30)}" for _ in range(rng.randint(0, 5))),
    )


@pytest.mark.parametrize("seed", range(8))
def test_random_sessions_keep_every_rule(seed: int) -> None:
    """For random views: never self, never twice, replies capped, quota and share respected."""
    rng = random.Random(seed)
    for _ in range(50):
        v = random_view(rng)
        who = Persona(
            name="kuro",
            topics=["neon reflections in puddles", "last train platform"],
            hashtags=["#neon", "#nightcity"],
            engagement=Engagement(
                follow_back=rng.random() < 0.5,
                reply_to_comments=rng.random() < 0.8,
                replies_per_counterpart_per_day=rng.randint(0, 3),
            ),
        )
        decisions = plan_engagement(who, v, NOW)
        likes = [d for d in decisions if isinstance(d, Like)]
        comments = [d for d in decisions if isinstance(d, Comment)]
        follows = [d for d in decisions if isinstance(d, Follow)]
        replies = [d for d in decisions if isinstance(d, Reply)]
        me = v.self_agent_id
        targets = [d.author_id for d in likes] + [d.author_id for d in comments]
        assert me not in targets + [r.author_id for r in replies]
        assert all(f.agent_id != me for f in follows)
        assert not {d.post_id for d in likes} & v.liked_post_ids
        assert not {d.post_id for d in comments} & v.commented_post_ids
        assert not {f.agent_id for f in follows} & v.followed_ids
        assert len({d.post_id for d in likes}) == len(likes)
        assert len({d.post_id for d in comments}) == len(comments)
        assert len({f.agent_id for f in follows}) == len(follows)
        assert len({r.comment_id for r in replies}) == len(replies)
        assert not {r.comment_id for r in replies} & v.replied_comment_ids
        assert {d.post_id for d in comments} <= v.liked_post_ids | {d.post_id for d in likes}
        if not who.engagement.follow_back:
            assert all(f.reason == "relevant" for f in follows)
        if not who.engagement.reply_to_comments:
            assert not replies
        per_counterpart = Counter(r.author_id for r in replies)
        cap = who.engagement.replies_per_counterpart_per_day
        for agent, n in per_counterpart.items():
            assert v.replies_today.get(agent, 0) + n <= cap
        spent = {
            "reactions": len(likes),
            "comments": len(comments) + len(replies),
            "follows": len(follows),
        }
        for bucket, n in spent.items():
            assert n <= session_share(v.left.get(bucket, 0), v.sessions_remaining)
            assert n <= v.left.get(bucket, 0)
        assert plan_engagement(who, v, NOW) == decisions
