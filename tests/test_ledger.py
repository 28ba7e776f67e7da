"""The ledger: what the agent remembers across restarts, crashes and a year of activity."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.errors import StateError, StateLocked
from glimpse_agent.ledger import AsyncLedger, Ledger, OwnPost
from glimpse_agent.persona import Engagement, Persona
from glimpse_agent.redaction import register_secret

START = utc(2026, 5, 1, 9)
PERSONA = Persona(
    name="ada",
    topics=["harbours"],
    posts_per_day=3,
    engagement=Engagement(likes_per_day=20, comments_per_day=4, follows_per_day=2),
)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def ledger(tmp_path: Path, clock: SimulatedClock) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "state", clock=clock) as opened:
        yield opened


def post(n: int, at: datetime, *, slot: str | None = None, prompt: str = "") -> OwnPost:
    return OwnPost(
        post_id=f"post-{n}",
        seq=n,
        created_at=at,
        prompt=prompt or f"prompt {n}: a quiet harbour at dawn",
        topic="harbours",
        caption=f"caption {n}",
        backend="huggingface",
        model="FLUX.1-schnell",
        cost_usd=0.003,
        slot_id=slot,
    )


# ---------------------------------------------------------------- one process per state dir

OPEN_IN_CHILD = """
import sys
from pathlib import Path
from glimpse_agent.clock import SystemClock
from glimpse_agent.errors import StateLocked
from glimpse_agent.ledger import Ledger
try:
    Ledger.open(Path(sys.argv[1]), clock=SystemClock()).close()
except StateLocked as e:
    print(e)
    sys.exit(3)
print("opened")
"""


def open_in_child(state: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", OPEN_IN_CHILD, str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - started


def test_second_process_fails_fast_while_first_holds_the_state(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    """A real second process gets StateLocked naming our pid at once, and opens after we close."""
    state = tmp_path / "state"
    first = Ledger.open(state, clock=clock)
    done, elapsed = open_in_child(state)
    assert done.returncode == 3, done.stderr
    assert f"another glimpse-agent (pid {os.getpid()}) is already running on {state}" in done.stdout
    assert elapsed < 20  # interpreter start-up included; the lock itself never waits
    first.close()
    done, _ = open_in_child(state)
    assert done.returncode == 0 and done.stdout.strip() == "opened", done.stderr


def test_second_ledger_in_the_same_process_is_refused(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    """Two Ledger objects on one directory would overwrite each other: the second one is refused."""
    with Ledger.open(tmp_path, clock=clock), pytest.raises(StateLocked):
        Ledger.open(tmp_path, clock=clock)


def test_closed_ledger_refuses_calls(tmp_path: Path, clock: SimulatedClock) -> None:
    """After close() every call raises instead of silently writing without the lock."""
    opened = Ledger.open(tmp_path, clock=clock)
    opened.close()
    opened.close()
    with pytest.raises(StateError, match="closed"):
        opened.record_action("posts", START)


# ---------------------------------------------------------------- actions and limits


def test_restart_mid_day_keeps_counts_and_remaining(tmp_path: Path, clock: SimulatedClock) -> None:
    """Counts and what is left survive a restart in the middle of the day."""
    state = tmp_path / "state"
    with Ledger.open(state, clock=clock) as first:
        for i in range(2):
            first.record_action("posts", START + timedelta(hours=i))
        for i in range(15):
            first.record_action("reactions", START + timedelta(minutes=i), ref=f"p{i}")
    now = START + timedelta(hours=3)
    with Ledger.open(state, clock=clock) as again:
        assert again.count_on("posts", START.date()) == 2
        assert again.remaining("posts", now, PERSONA) == 1
        assert again.remaining("reactions", now, PERSONA) == 5
        assert again.remaining_all(now, PERSONA)["follows"] == 2


def test_events_lists_recent_instants_of_one_bucket(ledger: Ledger) -> None:
    """events() returns a bucket's instants since a time, in order, and nothing from others."""
    for minutes in (30, 10, 20):
        ledger.record_action("comments", START + timedelta(minutes=minutes))
    ledger.record_action("follows", START)
    since = START + timedelta(minutes=15)
    assert ledger.events("comments", since) == [
        START + timedelta(minutes=20),
        START + timedelta(minutes=30),
    ]


def test_server_headers_and_429_are_remembered_across_restart(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    """A server view and a Retry-After block still apply after a restart, then expire."""
    state = tmp_path / "state"
    with Ledger.open(state, clock=clock) as first:
        first.note_server_limit("comments", 30, 1, START + timedelta(minutes=30), START)
        first.note_rate_limited("follows", START + timedelta(minutes=5))
    with Ledger.open(state, clock=clock) as again:
        assert again.remaining("comments", START, PERSONA) == 1
        assert again.remaining("follows", START, PERSONA) == 0
        assert again.next_free("follows", START, PERSONA) == START + timedelta(minutes=5)
        later = START + timedelta(minutes=31)
        assert again.remaining("comments", later, PERSONA) == 4
        assert again.remaining("follows", later, PERSONA) == 2


def test_a_shorter_retry_after_does_not_shorten_a_block(ledger: Ledger) -> None:
    """Two 429s: the later 'blocked until' stands."""
    ledger.note_rate_limited("reactions", START + timedelta(minutes=10))
    ledger.note_rate_limited("reactions", START + timedelta(minutes=2))
    assert ledger.next_free("reactions", START, PERSONA) == START + timedelta(minutes=10)


def test_unknown_bucket_and_naive_datetimes_are_refused(ledger: Ledger) -> None:
    """A typo or a naive datetime raises rather than being stored wrong."""
    with pytest.raises(ValueError, match="unknown rate-limit bucket"):
        ledger.record_action("likes", START)
    with pytest.raises(ValueError, match="naive"):
        ledger.record_action("posts", datetime(2026, 5, 1, 9))


def test_transaction_writes_all_or_nothing(ledger: Ledger) -> None:
    """If a transaction raises, neither the action nor the engagement is recorded."""
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.record_action("reactions", START, ref="p1")
        ledger.mark_engaged("like", "p1", START)
        raise RuntimeError("the like call failed")
    assert ledger.count_on("reactions", START.date()) == 0
    assert not ledger.has_engaged("like", "p1")
    with ledger.transaction():
        ledger.record_action("reactions", START, ref="p1")
        ledger.mark_engaged("like", "p1", START)
    assert ledger.count_on("reactions", START.date()) == 1 and ledger.has_engaged("like", "p1")


# ---------------------------------------------------------------- intents


def test_unsettled_intent_survives_a_crash_and_reopening(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    """begin_intent is durable: after a 'crash' (no settle), the reopened ledger lists it."""
    state = tmp_path / "state"
    first = Ledger.open(state, clock=clock)
    intent_id = first.begin_intent("post", {"caption": "Dawn", "slot": "s1"}, START)
    first.close()  # the process dies here, before the post call returned
    with Ledger.open(state, clock=clock) as again:
        [pending] = again.unsettled_intents()
        assert pending.intent_id == intent_id and pending.kind == "post"
        assert pending.payload == {"caption": "Dawn", "slot": "s1"} and pending.at == START
        again.settle_intent(intent_id, {"post_id": "post-1"}, post=post(1, START, slot="s1"))
        assert again.unsettled_intents() == []
        assert again.slot_done("s1") and again.recent_posts(1)[0].post_id == "post-1"


def test_abandoned_intent_is_no_longer_unsettled(ledger: Ledger) -> None:
    """An intent whose call certainly did not happen is closed by abandon_intent."""
    intent_id = ledger.begin_intent("follow", {"agent": "bob"}, START)
    ledger.abandon_intent(intent_id, "rate limited before the call")
    assert ledger.unsettled_intents() == []


def test_settling_twice_or_an_unknown_intent_is_an_error(ledger: Ledger) -> None:
    """Closing an intent is one-shot; an unknown id raises KeyError."""
    intent_id = ledger.begin_intent("post", {}, START)
    ledger.settle_intent(intent_id, {})
    with pytest.raises(ValueError, match="already settled"):
        ledger.abandon_intent(intent_id, "late")
    with pytest.raises(KeyError):
        ledger.settle_intent("nope", {})


def test_intent_payload_must_be_json(ledger: Ledger) -> None:
    """A payload that cannot be stored is refused before anything is written."""
    with pytest.raises(ValueError, match="JSON-serializable"):
        ledger.begin_intent("post", {"when": START}, START)
    assert ledger.unsettled_intents() == []


# ---------------------------------------------------------------- posts and slots


def test_posts_are_listed_by_recency_day_and_prompt(ledger: Ledger) -> None:
    """recent_posts, posts_on and prompts_since see the posts we recorded."""
    for n in range(3):
        ledger.add_post(post(n, START + timedelta(hours=n * 10), slot=f"slot-{n}"))
    assert [p.post_id for p in ledger.recent_posts(2)] == ["post-2", "post-1"]
    assert [p.post_id for p in ledger.posts_on(START.date())] == ["post-0", "post-1"]
    found = ledger.prompts_since(START + timedelta(hours=5))
    assert [(t, at) for t, _, at in found] == [
        ("harbours", START + timedelta(hours=10)),
        ("harbours", START + timedelta(hours=20)),
    ]
    assert ledger.slot_done("slot-1") and not ledger.slot_done("slot-9")


def test_add_post_twice_keeps_one(ledger: Ledger) -> None:
    """Recording the same post again (e.g. after reconciliation) does not duplicate it."""
    ledger.add_post(post(1, START))
    ledger.add_post(post(1, START))
    assert len(ledger.recent_posts(10)) == 1


def test_a_slot_without_a_post_can_be_marked_done(ledger: Ledger) -> None:
    """Engagement sessions and skipped slots are marked done explicitly."""
    ledger.mark_slot_done("2026-05-01/engage-2", START, outcome="skipped")
    assert ledger.slot_done("2026-05-01/engage-2")


def test_done_slots_lists_one_plan_days_slots(ledger: Ledger) -> None:
    """done_slots('<day>') lists that day's done slots, from posts and from marked slots."""
    ledger.mark_slot_done("2026-05-01/engage/1", START)
    ledger.add_post(post(1, START, slot="2026-05-01/post/1"))
    ledger.mark_slot_done("2026-05-02/engage/1", START)
    assert ledger.done_slots("2026-05-01") == ["2026-05-01/engage/1", "2026-05-01/post/1"]
    assert ledger.done_slots("2026-05-03") == []


# ---------------------------------------------------------------- engagement


def test_engaging_twice_is_detected(ledger: Ledger) -> None:
    """The second like of the same post is recognised; other kinds and posts are separate."""
    assert ledger.mark_engaged("like", "post-a", START) is True
    assert ledger.mark_engaged("like", "post-a", START + timedelta(days=3)) is False
    assert ledger.has_engaged("like", "post-a")
    assert not ledger.has_engaged("comment", "post-a")
    assert not ledger.has_engaged("like", "post-b")


def test_engagement_is_forgotten_after_sixty_days(ledger: Ledger, clock: SimulatedClock) -> None:
    """Engaged ids are kept 60 days, then pruned."""
    ledger.mark_engaged("follow", "agent-x", START)
    clock.advance(timedelta(days=59))
    ledger.prune(clock.now())
    assert ledger.has_engaged("follow", "agent-x")
    clock.advance(timedelta(days=2))
    ledger.prune(clock.now())
    assert not ledger.has_engaged("follow", "agent-x")


def test_replies_are_counted_per_counterpart_and_day(ledger: Ledger) -> None:
    """Replies to one agent are counted per UTC day, so loops between bots can be capped."""
    for n in range(3):
        ledger.mark_engaged("reply", f"comment-{n}", START, counterpart="bob")
    ledger.mark_engaged("reply", "comment-9", START, counterpart="eve")
    ledger.mark_engaged("reply", "comment-10", START + timedelta(days=1), counterpart="bob")
    assert ledger.replies_to_counterpart("bob", START.date()) == 3
    assert ledger.replies_to_counterpart("eve", START.date()) == 1
    assert ledger.replies_to_counterpart("bob", START.date() + timedelta(days=1)) == 1


def test_seen_comments_are_remembered(ledger: Ledger) -> None:
    """A comment we already looked at is not handled again."""
    ledger.mark_comment_seen("c-1", START)
    assert ledger.seen_comment("c-1") and not ledger.seen_comment("c-2")


def test_unknown_engagement_kind_is_refused(ledger: Ledger) -> None:
    """A typo in the kind raises rather than never matching."""
    with pytest.raises(ValueError, match="unknown engagement kind"):
        ledger.mark_engaged("likes", "p", START)


def test_engaged_ids_lists_recent_plain_ids_by_kind(ledger: Ledger, clock: SimulatedClock) -> None:
    """engaged_ids() gives the planner the ids of the last 14 days; has_engaged keeps 60."""
    ledger.mark_engaged("like", "post-old", START)
    ledger.mark_engaged("follow", "agent-1", START)
    clock.advance(timedelta(days=15))
    ledger.mark_engaged("like", "post-new", clock.now())
    ledger.mark_comment_seen("c-1", clock.now())
    ledger.prune(clock.now())
    ids = ledger.engaged_ids()
    assert ids["like"] == {"post-new"} and ids["follow"] == frozenset()
    assert set(ids) == {"like", "dislike", "comment", "reply", "follow"}
    assert ledger.has_engaged("like", "post-old") and ledger.has_engaged("follow", "agent-1")


def test_replies_by_counterpart_maps_agents_to_counts(ledger: Ledger) -> None:
    """The day's replies per agent, as the planner's replies_today wants them."""
    for n, agent in enumerate(["bob", "bob", "eve"]):
        ledger.mark_engaged("reply", f"c-{n}", START, counterpart=agent)
    assert ledger.replies_by_counterpart(START.date()) == {"bob": 2, "eve": 1}
    assert ledger.replies_by_counterpart(START.date() + timedelta(days=1)) == {}


# ---------------------------------------------------------------- spend


def test_spend_is_summed_per_utc_day_across_backends(ledger: Ledger) -> None:
    """Spend just before and after midnight UTC lands on different days."""
    ledger.record_spend(0.04, backend="openai", at=utc(2026, 5, 1, 23, 59))
    ledger.record_spend(0.003, backend="huggingface", at=utc(2026, 5, 1, 12))
    ledger.record_spend(0.04, backend="openai", at=utc(2026, 5, 2, 0, 1))
    assert ledger.spent_on(date(2026, 5, 1)) == pytest.approx(0.043)
    assert ledger.spent_on(date(2026, 5, 2)) == pytest.approx(0.04)
    assert ledger.spent_on(date(2026, 5, 3)) == 0.0


def test_record_spend_keeps_the_signature_the_image_router_relies_on() -> None:
    """record_spend(amount_usd, *, backend, at): the image router calls it through a Protocol."""
    params = inspect.signature(Ledger.record_spend).parameters
    assert list(params) == ["self", "amount_usd", "backend", "at"]
    assert params["amount_usd"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params["backend"].kind is params["at"].kind is inspect.Parameter.KEYWORD_ONLY


def test_negative_or_nan_spend_is_refused(ledger: Ledger) -> None:
    """A negative or NaN amount would corrupt the budget: refused."""
    for bad in (-0.01, float("nan")):
        with pytest.raises(ValueError, match="amount_usd"):
            ledger.record_spend(bad, backend="openai", at=START)


# ---------------------------------------------------------------- errors, plans, status


def test_last_fifty_errors_are_kept_with_secrets_masked(ledger: Ledger) -> None:
    """Only the last 50 errors stay; a key in an error message is masked."""
    register_secret("hf_supersecretvalue123")
    for n in range(55):
        ledger.record_error("imaging", f"error {n} with hf_supersecretvalue123", START)
    errors = ledger.last_errors(100)
    assert len(errors) == 50 and errors[0].message.startswith("error 54")
    assert errors[-1].message.startswith("error 5 ")
    assert all("supersecret" not in e.message for e in errors)


def test_plans_round_trip_and_only_the_last_seven_are_kept(
    ledger: Ledger, clock: SimulatedClock
) -> None:
    """A saved day plan loads back; old plans are dropped at the next prune."""
    for day in range(10):
        clock.advance(timedelta(hours=1))
        ledger.save_plan(f"2026-05-{day + 1:02d}", {"slots": [day]})
    assert ledger.load_plan("2026-05-10") == {"slots": [9]}
    ledger.prune(clock.now())
    assert ledger.load_plan("2026-05-03") is None and ledger.load_plan("2026-05-04") is not None


def test_status_view_is_json_and_shows_quotas(ledger: Ledger) -> None:
    """status_view summarises quotas, spend, posts, intents and errors as plain JSON."""
    ledger.record_action("posts", START)
    ledger.add_post(post(1, START))
    ledger.record_spend(0.01, backend="openai", at=START)
    ledger.begin_intent("post", {}, START)
    ledger.record_error("glimpse", "503", START)
    view = ledger.status_view(START + timedelta(minutes=1), PERSONA)
    json.dumps(view)
    assert view["quotas"]["posts"] == {
        "used_today": 1,
        "daily_cap": 3,
        "left": 2,
        "next_free": "2026-05-01T09:01:00.000000Z",
        "blocked_until": None,
    }
    assert view["spend_today_usd"] == 0.01 and view["recent_posts"][0]["post_id"] == "post-1"
    assert len(view["unsettled_intents"]) == 1 and view["last_errors"][0]["message"] == "503"


# ---------------------------------------------------------------- files on disk


def test_state_files_are_private(tmp_path: Path, ledger: Ledger) -> None:
    """The state dir is 0700 and the ledger and its backup are 0600."""
    ledger.record_action("posts", START)
    ledger.record_action("posts", START)
    state = tmp_path / "state"
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    for name in ("ledger.json", "ledger.json.bak", "lock"):
        assert oct((state / name).stat().st_mode & 0o777) == "0o600", name


def test_corrupt_ledger_is_recovered_from_backup_on_open(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    """A damaged ledger.json opens from its backup, losing only the last write."""
    state = tmp_path / "state"
    with Ledger.open(state, clock=clock) as first:
        first.record_action("posts", START)
        first.record_action("posts", START)
    (state / "ledger.json").write_bytes(b'{"buckets": {"1": ')
    with Ledger.open(state, clock=clock) as again:
        assert again.count_on("posts", START.date()) == 1
    assert len(list(state.glob("ledger.json.corrupt-*"))) == 1


def test_old_posts_move_to_history_and_a_torn_line_costs_one_post(
    tmp_path: Path, ledger: Ledger, clock: SimulatedClock
) -> None:
    """Week-old posts move to history.jsonl; a line torn by a crash is skipped, not fatal."""
    for n in range(3):
        ledger.add_post(post(n, START + timedelta(hours=n)))
    clock.advance(timedelta(days=9))
    ledger.prune(clock.now())
    history = tmp_path / "state" / "history.jsonl"
    assert len(history.read_text().splitlines()) == 3
    history.write_bytes(history.read_bytes()[:-20])  # the process died mid-append
    assert [p.post_id for p in ledger.posts_on(START.date())] == ["post-0", "post-1"]
    ledger.add_post(post(9, clock.now() - timedelta(days=8)))
    clock.advance(timedelta(days=1))
    ledger.prune(clock.now())
    assert [p.post_id for p in ledger.recent_posts(10)] == ["post-9", "post-1", "post-0"]
    assert len(ledger.prompts_since(START)) == 3


def test_read_only_ledger_reads_while_the_agent_holds_the_lock(
    tmp_path: Path, ledger: Ledger, clock: SimulatedClock
) -> None:
    """status/plan open read-only next to a running agent: they read, and cannot write."""
    ledger.record_action("posts", START)
    ledger.save_plan("2026-05-01", {"slots": []})
    with Ledger.open(tmp_path / "state", clock=clock, read_only=True) as view:
        assert view.count_on("posts", START.date()) == 1
        assert view.load_plan("2026-05-01") == {"slots": []}
        assert view.status_view(START, PERSONA)["quotas"]["posts"]["left"] == 2
        with pytest.raises(StateError, match="read-only"):
            view.record_action("posts", START)
        with pytest.raises(StateError, match="read-only"):
            view.prune(START)
    ledger.record_action("posts", START)  # the agent's lock and file are untouched
    assert ledger.count_on("posts", START.date()) == 2


def test_read_only_never_repairs_or_creates(tmp_path: Path, clock: SimulatedClock) -> None:
    """Read-only uses the backup of a damaged file without touching it, and creates nothing."""
    missing = tmp_path / "nothing-here"
    with Ledger.open(missing, clock=clock, read_only=True) as view:
        assert view.remaining_all(START, PERSONA)["posts"] == 3
    assert not missing.exists()
    state = tmp_path / "state"
    with Ledger.open(state, clock=clock) as first:
        first.record_action("posts", START)
        first.record_action("posts", START)
    (state / "ledger.json").write_bytes(b"{torn")
    before = sorted(p.name for p in state.iterdir())
    with Ledger.open(state, clock=clock, read_only=True) as view:
        assert view.count_on("posts", START.date()) == 1
    assert sorted(p.name for p in state.iterdir()) == before
    assert (state / "ledger.json").read_bytes() == b"{torn"


# ---------------------------------------------------------------- a year of a busy persona


def busy_day(ledger: Ledger, clock: SimulatedClock, d: int) -> None:
    """One day of a busy persona in one transaction: 6 posts (+2 retries), 40 likes,
    10 comments, 4 replies, 6 follows, 10 comments read, 1 error and a plan."""
    day = START + timedelta(days=d)
    clock.set(day)
    caption = "Morning in the harbour, the boats wait for the tide. #harbour #dawn " * 3
    with ledger.transaction():
        ledger.save_plan(day.date().isoformat(), {"slots": list(range(8))})
        for _ in range(8):
            ledger.record_action("generation", day)
            ledger.record_spend(0.003, backend="huggingface", at=day)
        for i in range(6):
            at = day + timedelta(hours=2 * i)
            intent = ledger.begin_intent("post", {"caption": caption}, at)
            ledger.record_action("posts", at)
            long_prompt = f"day {d} post {i}: " + "a quiet harbour at dawn, gulls, mist, " * 7
            p = post(d * 10 + i, at, slot=f"{d}-{i}", prompt=long_prompt)
            ledger.settle_intent(intent, {"post_id": p.post_id}, post=p)
        for bucket, kind, n in (
            ("reactions", "like", 40),
            ("comments", "comment", 10),
            ("comments", "reply", 4),
            ("follows", "follow", 6),
        ):
            for i in range(n):
                target = f"{kind}-{d}-{i}-2b9e6f1a-8c4d-4f3e-a1b2-c3d4e5f6a7b8"
                ledger.record_action(bucket, day, ref=target)
                ledger.mark_engaged(kind, target, day, counterpart=f"agent-{i % 5}")
        for i in range(10):
            ledger.mark_comment_seen(f"seen-{d}-{i}-5d6e7f80-1a2b-4c3d-9e8f", day)
        ledger.record_error("imaging.huggingface", "503 model loading", day)


def test_a_year_of_a_busy_persona_keeps_the_ledger_small(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    """405 busy days: ledger.json stays < 300 KB, counters and history stay right."""
    state = tmp_path / "state"
    sizes = []
    with Ledger.open(state, clock=clock) as ledger:
        for d in range(405):
            busy_day(ledger, clock, d)
            if d % 50 == 49:
                sizes.append((state / "ledger.json").stat().st_size)
    with Ledger.open(state, clock=clock) as ledger:
        last = (START + timedelta(days=404)).date()
        assert ledger.count_on("reactions", last) == 40
        assert ledger.count_on("comments", last) == 14
        assert ledger.count_on("posts", last - timedelta(days=300)) == 6
        assert ledger.count_on("posts", last - timedelta(days=399)) == 6
        assert ledger.count_on("posts", last - timedelta(days=401)) == 0  # beyond counter_days
        assert ledger.spent_on(last) == pytest.approx(0.024)
        assert ledger.has_engaged("like", f"like-{404 - 59}-0-2b9e6f1a-8c4d-4f3e-a1b2-c3d4e5f6a7b8")
        assert not ledger.has_engaged(
            "like", f"like-{404 - 62}-0-2b9e6f1a-8c4d-4f3e-a1b2-c3d4e5f6a7b8"
        )
        assert len(ledger.posts_on(last - timedelta(days=30))) == 6  # from history.jsonl
        assert len(ledger.engaged_ids()["like"]) == 40 * 15  # plain ids: the last 14 days + today
        year = ledger.prompts_since(clock.now() - timedelta(days=365))
        assert 365 * 6 <= len(year) <= 366 * 6
        assert ledger.remaining("posts", clock.now(), PERSONA) == 0
    assert max(sizes) < 300_000, sizes
    assert (state / "history.jsonl").stat().st_size < 2_000_000


# ---------------------------------------------------------------- asyncio


async def test_async_ledger_runs_calls_in_order_off_the_loop(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    """Calls issued together from asyncio run one at a time, in order, on one worker thread."""
    aledger = await AsyncLedger.open(tmp_path / "state", clock=clock)
    loop_thread = threading.get_ident()

    def record(led: Ledger, n: int) -> tuple[int, int]:
        led.record_action("reactions", START + timedelta(seconds=n), ref=f"p{n}")
        return n, threading.get_ident()

    done = await asyncio.gather(*(aledger.run(record, n) for n in range(20)))
    assert [n for n, _ in done] == list(range(20))
    workers = {thread for _, thread in done}
    assert len(workers) == 1 and loop_thread not in workers
    since = START - timedelta(seconds=1)
    assert await aledger.count_on("reactions", START.date()) == 20
    intent = await aledger.begin_intent("post", {"caption": "x"}, START)
    assert [i.intent_id for i in await aledger.unsettled_intents()] == [intent]
    assert await aledger.run(Ledger.events, "reactions", since) == [
        START + timedelta(seconds=n) for n in range(20)
    ]
    await aledger.aclose()
    with Ledger.open(tmp_path / "state", clock=clock) as reopened:
        assert reopened.count_on("reactions", START.date()) == 20
        assert len(reopened.unsettled_intents()) == 1


async def test_the_image_routers_spend_book_writes_off_the_loop(
    tmp_path: Path, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The router's (synchronous) spend book never writes the store on the event loop's
    thread, counts a queued amount at once, and the amount is durable after ``aclose``."""
    aledger = await AsyncLedger.open(tmp_path / "state", clock=clock)
    loop_thread = threading.get_ident()
    writers: list[int] = []
    real_write = aledger.ledger.storage._write_now

    def spy(data: dict[str, object]) -> None:
        writers.append(threading.get_ident())
        real_write(data)

    monkeypatch.setattr(aledger.ledger.storage, "_write_now", spy)
    book = aledger.spend_book()
    book.record_spend(0.04, backend="openai", at=START)
    book.record_spend(0.01, backend="glif", at=START)
    assert book.spent_on(START.date()) == pytest.approx(0.05)  # queued or written, counted
    with pytest.raises(ValueError):
        book.record_spend(-1.0, backend="glif", at=START)
    await aledger.aclose()
    assert writers and loop_thread not in writers
    with Ledger.open(tmp_path / "state", clock=clock) as reopened:
        assert reopened.spent_on(START.date()) == pytest.approx(0.05)


def test_an_angle_is_kept_with_the_prompt_in_the_ledger_and_the_history(
    ledger: Ledger, clock: SimulatedClock
) -> None:
    """The planner's angle of a post comes back with its prompt, from ledger.json and, once the
    post has moved there, from history.jsonl (exact no-repeat checks need it)."""
    at = clock.now()
    ledger.add_post(
        OwnPost("p1", 1, at, "fog, wide shot", "fog", "cap", "local", "m", 0.0, angle="wide")
    )
    assert [(p.prompt, p.angle) for p in ledger.ideas_since(at)] == [("fog, wide shot", "wide")]
    assert [tuple(p) for p in ledger.prompts_since(at)] == [("fog", "fog, wide shot", at)]
    clock.advance(timedelta(days=10))
    ledger.prune(clock.now())
    assert ledger.recent_posts(1)[0].angle == "wide"
    assert [p.angle for p in ledger.ideas_since(at)] == ["wide"]
