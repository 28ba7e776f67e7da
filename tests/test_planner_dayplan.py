"""The day's plan: posts inside the window and apart, sessions clear of posts, stable on restart."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from glimpse_agent.persona import Engagement, Persona
from glimpse_agent.planner import (
    ENGAGE_CLEARANCE,
    DayPlan,
    Slot,
    active_window,
    plan_day,
    post_buckets,
    posts_allowed,
    sessions_remaining,
)


def persona(
    zone: str = "Europe/Paris",
    hours: tuple[str, str] = ("09:00", "22:00"),
    *,
    posts: int = 3,
    gap: int = 90,
    sessions: int = 6,
    name: str = "tester",
) -> Persona:
    return Persona(
        name=name,
        topics=["lighthouses"],
        timezone=zone,
        active_hours=hours,
        posts_per_day=posts,
        min_post_gap_minutes=gap,
        engagement=Engagement(sessions_per_day=sessions),
    )


def assert_sound(who: Persona, plan: DayPlan, *, posts: int, gap_minutes: int) -> None:
    """The invariants every full plan keeps."""
    start, end = active_window(who, plan.local_day)
    times = [s.at for s in plan.slots]
    assert times == sorted(times)
    assert all(s.at.tzinfo is UTC for s in plan.slots)
    assert all(start <= s.at < end for s in plan.slots)
    post_times = [s.at for s in plan.posts]
    assert len(post_times) == posts
    for a, b in itertools.pairwise(post_times):
        assert b - a >= timedelta(minutes=gap_minutes)
    for session in plan.sessions:
        assert all(abs(session.at - p) >= ENGAGE_CLEARANCE for p in post_times)
    day = plan.local_day.isoformat()
    assert [s.slot_id for s in plan.posts] == [f"{day}/post/{i}" for i in range(1, posts + 1)]
    assert [s.slot_id for s in plan.sessions] == [
        f"{day}/engage/{i}" for i in range(1, len(plan.sessions) + 1)
    ]


DAYS_AROUND = [date(2026, 11, 21) + timedelta(days=i) for i in range(4)]


@pytest.mark.parametrize("day", DAYS_AROUND)
@pytest.mark.parametrize("posts", [1, 2, 3])
def test_tokyo_overnight_posts_stay_inside_the_window(day: date, posts: int) -> None:
    """A 20:00-03:00 Tokyo persona posts only inside its window, which straddles local midnight."""
    kuro = persona("Asia/Tokyo", ("20:00", "03:00"), posts=posts, gap=120, sessions=4)
    plan = plan_day(kuro, day, posts_allowed=posts)
    assert_sound(kuro, plan, posts=posts, gap_minutes=120)
    assert len(plan.sessions) == 4
    for slot in plan.posts:
        local = slot.at.astimezone(kuro.zone)
        assert local.hour >= 20 or local.hour < 3
        assert slot.at.date() == day  # 11:00-18:00 UTC: the same UTC day


@pytest.mark.parametrize("day", DAYS_AROUND)
@pytest.mark.parametrize("posts", [1, 3, 6])
def test_tokyo_morning_window_across_utc_midnight(day: date, posts: int) -> None:
    """A 07:00-11:00 Tokyo window is 22:00-02:00 UTC; posts stay inside on both UTC days."""
    kuro = persona("Asia/Tokyo", ("07:00", "11:00"), posts=posts, gap=30, sessions=3)
    plan = plan_day(kuro, day, posts_allowed=posts)
    assert_sound(kuro, plan, posts=posts, gap_minutes=30)
    for slot in plan.slots:
        local = slot.at.astimezone(kuro.zone)
        assert local.date() == day and 7 <= local.hour < 11
    if posts == 6:
        assert {s.at.date() for s in plan.posts} == {day - timedelta(days=1), day}


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/Paris", date(2026, 3, 29)),
        ("Europe/Paris", date(2026, 3, 28)),
        ("Europe/Paris", date(2026, 10, 25)),
        ("Europe/Paris", date(2026, 10, 24)),
        ("America/New_York", date(2026, 3, 8)),
        ("America/New_York", date(2026, 3, 7)),
        ("America/New_York", date(2026, 11, 1)),
        ("America/New_York", date(2026, 10, 31)),
    ],
)
@pytest.mark.parametrize(
    "hours",
    [
        ("01:30", "23:00"),
        ("02:30", "22:00"),
        ("22:00", "02:30"),
        ("00:00", "03:00"),
        ("20:00", "03:00"),
    ],
)
def test_dst_days_keep_count_window_and_gap(zone: str, day: date, hours: tuple[str, str]) -> None:
    """On DST days with windows touching 02:00-03:00, posts stay inside, counted and apart."""
    who = persona(zone, hours, posts=3, gap=30, sessions=5)
    plan = plan_day(who, day, posts_allowed=3)
    assert_sound(who, plan, posts=3, gap_minutes=30)
    assert len(plan.sessions) == 5


@pytest.mark.parametrize(
    ("day", "expected"),
    [(date(2026, 3, 28), 3), (date(2026, 3, 29), 2), (date(2026, 10, 25), 4)],
)
def test_window_length_is_real_time_on_dst_days(day: date, expected: int) -> None:
    """00:00-03:00 lasts 2 hours on spring-forward day and 4 on fall-back day; posts fit that."""
    who = persona("Europe/Paris", ("00:00", "03:00"), posts=4, gap=60)
    plan = plan_day(who, day, posts_allowed=4)
    assert_sound(who, plan, posts=expected, gap_minutes=60)


def test_a_whole_year_of_overnight_days_keeps_the_gap_across_days() -> None:
    """Over a year (two DST switches), every post is in its window and apart, even across days."""
    who = persona("Europe/Paris", ("22:00", "02:30"), posts=4, gap=60, sessions=3)
    previous: datetime | None = None
    for offset in range(365):
        day = date(2026, 1, 1) + timedelta(days=offset)
        plan = plan_day(who, day, posts_allowed=4)
        assert_sound(who, plan, posts=4, gap_minutes=60)
        first = plan.posts[0].at
        if previous is not None:
            assert first - previous >= timedelta(minutes=60)
        previous = plan.posts[-1].at


@pytest.mark.parametrize(
    ("per_day", "allowed", "expected"),
    [(3, 3, 3), (3, 2, 2), (3, 1, 1), (3, 0, 0), (0, 3, 0), (2, 5, 2), (6, 6, 6), (3, -1, 0)],
)
def test_post_count_is_capped_by_allowed_and_persona(
    per_day: int, allowed: int, expected: int
) -> None:
    """Never more posts than posts_allowed, nor than the persona's posts_per_day."""
    who = persona(posts=per_day, gap=60)
    plan = plan_day(who, date(2026, 6, 1), posts_allowed=allowed)
    assert_sound(who, plan, posts=expected, gap_minutes=60)


@pytest.mark.parametrize(
    ("hours", "gap", "expected"),
    [
        (("09:00", "11:00"), 90, 1),  # two hours hold one post 90 minutes from any other
        (("09:00", "12:00"), 90, 2),
        (("09:00", "10:00"), 90, 1),  # a window shorter than the gap still gets one post
        (("09:00", "10:00"), 0, 3),  # no gap: all of them fit
    ],
)
def test_a_short_window_gets_fewer_posts_rather_than_a_broken_gap(
    hours: tuple[str, str], gap: int, expected: int
) -> None:
    """When the window cannot hold the posts min_gap apart, fewer are planned."""
    who = persona(hours=hours, posts=3, gap=gap)
    plan = plan_day(who, date(2026, 6, 1), posts_allowed=3)
    assert_sound(who, plan, posts=expected, gap_minutes=gap)


def test_min_gap_argument_overrides_the_persona() -> None:
    """min_gap_minutes given by the caller wins over the persona's."""
    who = persona(hours=("09:00", "13:00"), posts=4, gap=10)
    assert len(plan_day(who, date(2026, 6, 1), posts_allowed=4).posts) == 4
    plan = plan_day(who, date(2026, 6, 1), posts_allowed=4, min_gap_minutes=120)
    assert_sound(who, plan, posts=2, gap_minutes=120)


def test_zero_jitter_gives_evenly_spaced_posts() -> None:
    """Without jitter, posts sit at the centres of equal slices of the window."""
    who = persona(hours=("09:00", "21:00"), posts=3, gap=60)
    plan = plan_day(who, date(2026, 6, 1), posts_allowed=3, jitter_minutes=0)
    local = [s.at.astimezone(who.zone).strftime("%H:%M") for s in plan.posts]
    assert local == ["11:00", "15:00", "19:00"]


@pytest.mark.parametrize("jitter", [0, 5, 20, 60])
def test_jitter_moves_a_post_at_most_jitter_minutes(jitter: int) -> None:
    """Each post is within jitter_minutes of its evenly spaced anchor."""
    who = persona(hours=("08:00", "23:00"), posts=4, gap=60)
    anchors = plan_day(who, date(2026, 6, 1), posts_allowed=4, jitter_minutes=0).posts
    moved = plan_day(who, date(2026, 6, 1), posts_allowed=4, jitter_minutes=jitter).posts
    for a, m in zip(anchors, moved, strict=True):
        assert abs(a.at - m.at) <= timedelta(minutes=jitter)


def test_jitter_is_deterministic_per_persona_and_day() -> None:
    """The same persona and day always give the same times; another day or name differs."""
    who = persona()
    day = date(2026, 6, 1)
    first = plan_day(who, day, posts_allowed=3)
    assert plan_day(who, day, posts_allowed=3) == first
    assert [s.at.time() for s in plan_day(who, day + timedelta(days=1), posts_allowed=3).slots] != [
        s.at.time() for s in first.slots
    ]
    assert plan_day(persona(name="someone"), day, posts_allowed=3).slots != first.slots


def test_sessions_follow_the_persona_or_the_argument() -> None:
    """Engagement sessions default to sessions_per_day; the sessions argument overrides it."""
    who = persona(sessions=6)
    assert len(plan_day(who, date(2026, 6, 1), posts_allowed=3).sessions) == 6
    assert len(plan_day(who, date(2026, 6, 1), posts_allowed=3, sessions=2).sessions) == 2
    assert len(plan_day(who, date(2026, 6, 1), posts_allowed=3, sessions=0).sessions) == 0


@pytest.mark.parametrize("sessions", [1, 3, 6, 12, 48])
@pytest.mark.parametrize("posts", [0, 1, 3, 6])
def test_sessions_never_collide_with_posts(sessions: int, posts: int) -> None:
    """Every session is at least ENGAGE_CLEARANCE away from every post."""
    who = persona(hours=("07:00", "23:00"), posts=posts, gap=60, sessions=sessions)
    plan = plan_day(who, date(2026, 6, 1), posts_allowed=posts)
    assert_sound(who, plan, posts=posts, gap_minutes=60)
    assert len(plan.sessions) == sessions


def test_a_session_with_no_room_left_is_dropped() -> None:
    """A window too short to keep a session clear of the post plans the post alone."""
    who = persona(hours=("09:00", "09:15"), posts=1, gap=0, sessions=1)
    plan = plan_day(who, date(2026, 6, 1), posts_allowed=1, jitter_minutes=0)
    assert [s.kind for s in plan.slots] == ["post"]


def test_empty_window_plans_nothing() -> None:
    """A window swallowed by a DST gap has no slots at all."""
    who = persona("Europe/Paris", ("02:10", "02:50"))
    assert plan_day(who, date(2026, 3, 29), posts_allowed=3).slots == ()


def test_slot_ids_name_the_local_day_kind_and_number() -> None:
    """Slot ids read "<local day>/<kind>/<n>", numbered from 1 in time order."""
    plan = plan_day(persona(posts=2, sessions=2), date(2026, 11, 22), posts_allowed=2)
    ids = sorted(s.slot_id for s in plan.slots)
    assert ids == [
        "2026-11-22/engage/1",
        "2026-11-22/engage/2",
        "2026-11-22/post/1",
        "2026-11-22/post/2",
    ]


class TestRestart:
    """Re-planning after a restart finds the same slots and skips what is done or too late."""

    who = persona("Asia/Tokyo", ("20:00", "03:00"), posts=3, gap=120, sessions=4)
    day = date(2026, 11, 22)

    def full(self) -> DayPlan:
        return plan_day(self.who, self.day, posts_allowed=3)

    def test_same_ids_and_times_when_replanned(self) -> None:
        """Two plans of the same day with the same inputs are identical."""
        assert self.full() == plan_day(self.who, self.day, posts_allowed=3)

    def test_done_slots_are_left_out_and_the_rest_unchanged(self) -> None:
        """Done slot ids disappear; every other slot keeps its id and time."""
        full = self.full()
        done = frozenset({full.posts[0].slot_id, full.sessions[1].slot_id})
        replanned = plan_day(self.who, self.day, posts_allowed=3, done_slot_ids=done)
        assert set(replanned.slots) == {s for s in full.slots if s.slot_id not in done}

    def test_late_slots_beyond_grace_are_dropped(self) -> None:
        """Slots more than grace_minutes in the past are dropped; less late ones are kept."""
        full = self.full()
        target = full.posts[1]
        now = target.at + timedelta(minutes=10)
        kept = plan_day(self.who, self.day, posts_allowed=3, now=now, grace_minutes=15)
        assert target in kept.slots
        assert all(s.at >= now - timedelta(minutes=15) for s in kept.slots)
        assert set(kept.slots) == {s for s in full.slots if s.at >= now - timedelta(minutes=15)}
        stricter = plan_day(self.who, self.day, posts_allowed=3, now=now, grace_minutes=5)
        assert target not in stricter.slots

    def test_default_grace_is_fifteen_minutes(self) -> None:
        """Without grace_minutes, a slot 14 minutes late survives and one 16 minutes late not."""
        target = self.full().posts[0]
        assert (
            target
            in plan_day(
                self.who, self.day, posts_allowed=3, now=target.at + timedelta(minutes=14)
            ).slots
        )
        assert (
            target
            not in plan_day(
                self.who, self.day, posts_allowed=3, now=target.at + timedelta(minutes=16)
            ).slots
        )

    def test_ids_do_not_depend_on_done_or_now(self) -> None:
        """Each surviving slot has exactly the id and time it had in the full plan."""
        full = {s.slot_id: s for s in self.full().slots}
        later = plan_day(
            self.who,
            self.day,
            posts_allowed=3,
            done_slot_ids=frozenset({"2026-11-22/post/1"}),
            now=self.full().slots[3].at,
        )
        assert later.slots
        assert all(full[s.slot_id] == s for s in later.slots)


def test_sessions_remaining_counts_this_one_and_those_ahead() -> None:
    """A session learns how many sessions are left today, itself included."""
    plan = plan_day(persona(sessions=4), date(2026, 6, 1), posts_allowed=3)
    sessions = plan.sessions
    assert sessions_remaining(plan, sessions[0].at) == 4
    assert sessions_remaining(plan, sessions[-1].at) == 1
    assert sessions_remaining(plan, sessions[-1].at + timedelta(hours=1)) == 1
    assert sessions_remaining(DayPlan(date(2026, 6, 1), ()), sessions[0].at) == 1


def test_slots_are_frozen() -> None:
    """Plans cannot be changed after the fact."""
    slot = Slot("2026-06-01/post/1", "post", datetime(2026, 6, 1, 9, tzinfo=UTC))
    with pytest.raises(AttributeError):
        slot.at = datetime(2026, 6, 1, 10, tzinfo=UTC)  # type: ignore[misc]


def test_generation_binds_the_plan_only_when_glimpses_generator_is_the_whole_chain() -> None:
    """Glimpse's six generations a day limit the posts only of a chain that has nothing else:
    with another backend after it, an empty ``generation`` bucket must not shrink the plan."""
    who = persona(posts=6)
    left = {"posts": 6, "generation": 0}
    assert post_buckets(["glimpse"]) == ("posts", "generation")
    assert post_buckets(["glimpse", "local"]) == ("posts",)
    assert post_buckets(["huggingface"]) == ("posts",)
    assert posts_allowed(who, 0, left, buckets=post_buckets(["glimpse"])) == 0
    assert posts_allowed(who, 0, left, buckets=post_buckets(["glimpse", "local"])) == 6
    assert posts_allowed(who, 2, {"posts": 1, "generation": 9}, buckets=("posts",)) == 3
