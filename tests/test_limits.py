"""Rate limits as pure functions of plain datetimes: sliding windows, UTC days, persona caps,
the server's headers and 429 blocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from glimpse_agent import limits
from glimpse_agent.clock import utc
from glimpse_agent.limits import BucketUsage, ServerView, next_free, remaining
from glimpse_agent.persona import Engagement, Persona

MIN, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def persona(**kw: object) -> Persona:
    engagement = kw.pop("engagement", None) or Engagement()
    return Persona(name="ada", topics=["harbours"], engagement=engagement, **kw)  # type: ignore[arg-type]


def spaced(start: datetime, n: int, step: timedelta) -> list[datetime]:
    return [start + i * step for i in range(n)]


# ---------------------------------------------------------------- sliding windows


def test_hour_window_is_full_after_sixty_reactions_within_the_hour() -> None:
    """60 likes in the last hour leave no reaction until the oldest one slides out."""
    events = spaced(utc(2026, 5, 1, 10), 60, MIN)
    assert remaining("reactions", events, utc(2026, 5, 1, 10, 59, 30)) == 0
    assert next_free("reactions", events, utc(2026, 5, 1, 10, 59, 30)) == utc(2026, 5, 1, 11)


def test_hour_window_counts_now_minus_period_exclusive_and_now_inclusive() -> None:
    """The window is (now - 1 h, now]: an event exactly an hour old no longer counts."""
    now = utc(2026, 5, 1, 12)
    assert remaining("follows", [now - HOUR], now) == 30
    assert remaining("follows", [now - HOUR + timedelta(microseconds=1)], now) == 29
    assert remaining("follows", [now], now) == 29


def test_hour_window_slides_rather_than_resetting_on_the_hour() -> None:
    """Thirty comments at 10:45 still block at 11:15 and free up at 11:45, not at 11:00."""
    events = [utc(2026, 5, 1, 10, 45)] * 30
    assert remaining("comments", events, utc(2026, 5, 1, 11, 15)) == 0
    assert next_free("comments", events, utc(2026, 5, 1, 11, 15)) == utc(2026, 5, 1, 11, 45)
    assert remaining("comments", events, utc(2026, 5, 1, 11, 45)) == 30


def test_minute_window_limits_generation_bursts() -> None:
    """Ten generations in one minute block the eleventh until the first is a minute old."""
    start = utc(2026, 5, 1, 9)
    events = spaced(start, 10, timedelta(seconds=3))
    assert remaining("settings", events, start + timedelta(seconds=30)) == 0
    assert next_free("settings", events, start + timedelta(seconds=30)) == start + MIN


def test_next_free_waits_for_enough_events_to_slide_out() -> None:
    """With 62 likes in the window, the third oldest must leave before one more is allowed."""
    start = utc(2026, 5, 1, 10)
    events = spaced(start, 62, timedelta(seconds=30))
    assert next_free("reactions", events, start + timedelta(minutes=31)) == start + timedelta(
        minutes=1, hours=1
    )


# ---------------------------------------------------------------- daily windows (UTC)

POSTS_EVENING = spaced(utc(2026, 5, 1, 18), 6, HOUR)  # 18:00 ... 23:00, six posts


@pytest.mark.parametrize(
    ("now", "left"),
    [
        (utc(2026, 5, 1, 23, 59, 59), 0),
        (datetime(2026, 5, 1, 23, 59, 59, 999999, tzinfo=UTC), 0),
        (utc(2026, 5, 2, 0, 0, 0), 6),
        (utc(2026, 5, 2, 0, 0, 1), 6),
    ],
)
def test_daily_post_limit_resets_exactly_at_midnight_utc(now: datetime, left: int) -> None:
    """Six posts on 1 May: none left until 23:59:59.999999, six again from 00:00:00 UTC."""
    assert remaining("posts", POSTS_EVENING, now) == left


def test_next_free_for_a_full_day_is_the_next_midnight_utc() -> None:
    """When the day's six posts are used, the next post is possible at midnight UTC."""
    assert next_free("posts", POSTS_EVENING, utc(2026, 5, 1, 23, 30)) == utc(2026, 5, 2)


def test_daily_window_follows_utc_not_the_callers_time_zone() -> None:
    """00:30 in Tokyo on 2 May is still 1 May in UTC, so the day's posts still count."""
    tokyo = timezone(timedelta(hours=9))
    now = datetime(2026, 5, 2, 8, 30, tzinfo=tokyo)  # 23:30 UTC on 1 May
    assert remaining("posts", POSTS_EVENING, now) == 0
    assert remaining("posts", POSTS_EVENING, now + HOUR) == 6


def test_yesterdays_posts_still_count_in_the_sliding_hour_after_midnight() -> None:
    """At 00:10 the daily count is fresh but the hour window still holds 23:30's posts."""
    events = [utc(2026, 5, 1, 23, 30)] * 6
    assert remaining("posts", events, utc(2026, 5, 2, 0, 10)) == 4


# ---------------------------------------------------------------- persona caps


def test_persona_cap_lower_than_platform_wins() -> None:
    """A persona with 5 likes a day has none left after 5, though the platform allows 60/h."""
    caps = limits.persona_caps(persona(engagement=Engagement(likes_per_day=5)))
    events = spaced(utc(2026, 5, 1, 8), 5, MIN)
    now = utc(2026, 5, 1, 10)
    assert remaining("reactions", events, now, caps) == 0
    assert remaining("reactions", events, now) == 60
    assert next_free("reactions", events, now, caps) == utc(2026, 5, 2)


def test_persona_caps_map_to_buckets_and_replies_share_comments() -> None:
    """Posts, likes, comments (with replies) and follows each cap their own bucket."""
    p = persona(posts_per_day=2, engagement=Engagement(comments_per_day=3, follows_per_day=1))
    caps = limits.persona_caps(p)
    assert caps["posts"] == 2 and caps["comments"] == 3 and caps["follows"] == 1
    assert "settings" not in caps and "registration" not in caps


@pytest.mark.parametrize(("posts", "generation"), [(0, 2), (2, 4), (4, 6), (6, 6)])
def test_generation_cap_is_posts_plus_retries_capped_by_platform(
    posts: int, generation: int
) -> None:
    """Generations allow a couple of retries per day, never more than Glimpse's 6."""
    assert limits.persona_caps(persona(posts_per_day=posts))["generation"] == generation


def test_a_cap_of_zero_never_frees_up() -> None:
    """posts_per_day = 0: nothing left, and next_free says never (None)."""
    caps = limits.persona_caps(persona(posts_per_day=0))
    now = utc(2026, 5, 1, 12)
    assert remaining("posts", [], now, caps) == 0
    assert next_free("posts", [], now, caps) is None


def test_next_free_is_now_when_a_unit_is_available() -> None:
    """An unused bucket is free right now."""
    now = utc(2026, 5, 1, 12)
    assert next_free("follows", [], now) == now


# ---------------------------------------------------------------- the server's view


def test_server_saying_fewer_left_wins_until_its_reset() -> None:
    """Server says 2 left (we think 58): 2 left, minus our calls since; local again after reset."""
    observed = utc(2026, 5, 1, 10)
    view = ServerView(limit=60, remaining=2, reset=utc(2026, 5, 1, 10, 30), observed_at=observed)
    events = [observed - MIN, observed]  # ours, both already included in the server's answer
    assert remaining("reactions", events, observed, server=view) == 2
    events.append(observed + MIN)
    assert remaining("reactions", events, observed + 2 * MIN, server=view) == 1
    after_reset = utc(2026, 5, 1, 10, 30)
    assert remaining("reactions", events, after_reset, server=view) == 57


def test_server_saying_more_left_does_not_loosen_our_count() -> None:
    """Server says 50 left, our own count says 0: we trust our count."""
    now = utc(2026, 5, 1, 10)
    events = spaced(now - 30 * MIN, 30, MIN)
    view = ServerView(limit=30, remaining=50, reset=now + HOUR, observed_at=now)
    assert remaining("follows", events, now, server=view) == 0


def test_server_with_nothing_left_frees_at_its_reset() -> None:
    """Server says 0 left: the next unit is at its reset time."""
    now = utc(2026, 5, 1, 10)
    view = ServerView(limit=30, remaining=0, reset=now + 20 * MIN, observed_at=now)
    assert remaining("comments", [], now, server=view) == 0
    assert next_free("comments", [], now, server=view) == now + 20 * MIN


# ---------------------------------------------------------------- 429 blocks


def test_retry_after_blocks_the_bucket_until_then() -> None:
    """After a 429 with Retry-After: 0 left until the block ends, then the normal count."""
    now = utc(2026, 5, 1, 10)
    until = now + timedelta(seconds=90)
    assert remaining("comments", [], now, blocked_until=until) == 0
    assert next_free("comments", [], now, blocked_until=until) == until
    assert remaining("comments", [], until, blocked_until=until) == 30


@pytest.mark.parametrize(
    ("block", "free"), [(2 * MIN, utc(2026, 5, 2)), (10 * MIN, utc(2026, 5, 2, 0, 5))]
)
def test_a_block_and_a_full_day_wait_for_the_later_of_the_two(
    block: timedelta, free: datetime
) -> None:
    """Blocked at 23:55 with the day full: free at midnight or when the block ends, if later."""
    now = utc(2026, 5, 1, 23, 55)
    assert next_free("posts", POSTS_EVENING, now, blocked_until=now + block) == free


# ---------------------------------------------------------------- the planner's view


def test_remaining_all_reports_every_bucket() -> None:
    """One call answers "what is left everywhere" with usage, server views and blocks applied."""
    now = utc(2026, 5, 1, 10)
    usage = {
        "posts": BucketUsage(events=[now - HOUR * 2]),
        "comments": BucketUsage(blocked_until=now + MIN),
    }
    caps = limits.persona_caps(persona(posts_per_day=3))
    left = limits.remaining_all(usage, now, caps)
    assert set(left) == set(limits.BUCKETS)
    assert left["posts"] == 2 and left["comments"] == 0 and left["settings"] == 10


def test_unknown_bucket_is_an_error_not_a_silent_zero() -> None:
    """A typo in a bucket name raises instead of never being counted."""
    with pytest.raises(ValueError, match="unknown rate-limit bucket 'likes'"):
        remaining("likes", [], utc(2026, 5, 1))
