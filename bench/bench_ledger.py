"""Ledger write latency against the age of the state, and the state's size after a year.

Simulates a busy persona (6 posts, 2 spare generations, 60 likes, 15 comments, 5 replies,
10 follows and 20 comments read per day, plus a plan and a couple of errors) with a simulated
clock, then times single durable writes (``record_action``, ``begin_intent``, a like as
``record_action`` + ``mark_engaged`` in one transaction) on the state as it is after 1, 30 and 365
days. Every write is a real atomic write with fsync, on the file system of ``--dir``.

    .venv/bin/python bench/bench_ledger.py                 # default: a temp dir, 200 samples
    .venv/bin/python bench/bench_ledger.py --dir /var/lib/glimpse-agent/bench --samples 500
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.ledger import Ledger, OwnPost
from glimpse_agent.persona import Engagement, Persona

START = utc(2026, 1, 1, 6)
PROMPT = "a quiet harbour at dawn, fishing boats with peeling paint, gulls, soft mist, " * 4
CAPTION = "Morning in the harbour: the boats wait for the tide. #harbour #dawn #mist " * 3

# What a busy persona does in one day: (bucket, engagement kind or None, count).
BUSY_DAY = [
    ("reactions", "like", 60),
    ("comments", "comment", 15),
    ("comments", "reply", 5),
    ("follows", "follow", 10),
]
POSTS_PER_DAY = 6
SPARE_GENERATIONS = 2
COMMENTS_READ = 20


def simulate_days(ledger: Ledger, clock: SimulatedClock, days: int, *, start_day: int = 0) -> None:
    """Run ``days`` busy days; each of the day's sessions is one transaction (one disk write),
    which is how a fast simulation stays realistic in size if not in write count."""
    for d in range(start_day, start_day + days):
        day_start = START + timedelta(days=d)
        clock.set(day_start)
        with ledger.transaction():
            ledger.save_plan(
                day_start.date().isoformat(), {"slots": [f"{d}-{i}" for i in range(8)]}
            )
        for session in range(POSTS_PER_DAY):
            clock.set(day_start + timedelta(hours=2 * session, minutes=1))
            with ledger.transaction():
                _session(ledger, clock, d, session)


def _session(ledger: Ledger, clock: SimulatedClock, d: int, session: int) -> None:
    now = clock.now()
    tries = 1 + (1 if session < SPARE_GENERATIONS else 0)
    for _ in range(tries):
        ledger.record_action("generation", now)
        ledger.record_spend(0.003, backend="huggingface", at=now)
    intent = ledger.begin_intent("post", {"slot": f"{d}-{session}", "caption": CAPTION}, now)
    ledger.record_action("posts", now)
    post = OwnPost(
        post_id=f"{d:05d}-{session}-7c3f9a2e-4b1d-4e8a-9f00-1c2d3e4f5a6b",
        seq=d * 10 + session,
        created_at=now,
        prompt=f"{d} {session} {PROMPT}",
        topic=f"harbours {session}",
        caption=CAPTION,
        backend="huggingface",
        model="black-forest-labs/FLUX.1-schnell",
        cost_usd=0.003,
        slot_id=f"{d}-{session}",
    )
    ledger.settle_intent(intent, {"post_id": post.post_id}, post=post)
    for bucket, kind, count in BUSY_DAY:
        for i in range(count // POSTS_PER_DAY + (1 if session < count % POSTS_PER_DAY else 0)):
            target = f"{kind}-{d}-{session}-{i}-2b9e6f1a-8c4d-4f3e-a1b2-c3d4e5f6a7b8"
            ledger.record_action(bucket, now, ref=target)
            ledger.mark_engaged(kind, target, now, counterpart=f"agent-{i % 7}")
    for i in range(COMMENTS_READ // POSTS_PER_DAY):
        ledger.mark_comment_seen(
            f"seen-{d}-{session}-{i}-5d6e7f80-1a2b-4c3d-9e8f-0a1b2c3d4e5f", now
        )
    if session == 0:
        ledger.record_error("imaging.huggingface", "503 Service Unavailable (model loading)", now)


def timed(fn: Callable[[], object], samples: int) -> tuple[float, float, float]:
    """Median, 95th percentile and max latency of ``fn`` in milliseconds."""
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    out.sort()
    return statistics.median(out), out[int(0.95 * (len(out) - 1))], out[-1]


def measure(state: Path, now: datetime, samples: int) -> dict[str, tuple[float, float, float]]:
    """Time writes on a copy of ``state``, so the timed writes do not grow the simulation."""
    with tempfile.TemporaryDirectory(dir=state.parent) as tmp:
        copy = Path(tmp) / "state"
        shutil.copytree(state, copy, ignore=shutil.ignore_patterns("lock"))
        clock = SimulatedClock(now)
        with Ledger.open(copy, clock=clock) as ledger:
            # The first write after a start prunes and maintains history.jsonl: the worst case.
            first = timed(lambda: ledger.record_action("settings", now), 1)
            counter = iter(range(10**9))

            def like() -> None:
                target = f"bench-{next(counter)}"
                with ledger.transaction():
                    ledger.record_action("reactions", now, ref=target)
                    ledger.mark_engaged("like", target, now)

            persona = Persona(
                name="bench",
                topics=["harbours"],
                posts_per_day=6,
                engagement=Engagement(likes_per_day=60, comments_per_day=20, follows_per_day=10),
            )
            return {
                "first write (prune)": first,
                "record_action": timed(lambda: ledger.record_action("settings", now), samples),
                "begin_intent": timed(
                    lambda: ledger.begin_intent("post", {"caption": CAPTION}, now), samples
                ),
                "like (tx of 2)": timed(like, samples),
                "prune (hourly)": timed(lambda: ledger.prune(now), max(5, samples // 10)),
                "remaining_all (read)": timed(lambda: ledger.remaining_all(now, persona), samples),
            }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dir", type=Path, help="where to put the state (default: a temp dir)")
    parser.add_argument("--samples", type=int, default=200, help="writes timed per cell")
    parser.add_argument("--days", type=int, nargs="+", default=[1, 30, 365])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        clock = SimulatedClock(START)
        state = Path(tmp) / "state"
        rows = []
        simulated = 0
        with Ledger.open(state, clock=clock) as ledger:
            t0 = time.perf_counter()
            for target in sorted(args.days):
                simulate_days(ledger, clock, target - simulated, start_day=simulated)
                simulated = target
                size = (state / "ledger.json").stat().st_size
                hist = state / "history.jsonl"
                hist_size = hist.stat().st_size if hist.exists() else 0
                timings = measure(state, clock.now() + timedelta(minutes=30), args.samples)
                rows.append((target, size, hist_size, timings))
            sim_s = time.perf_counter() - t0
        print(f"busy persona, {args.samples} timed writes per cell, state on {tmp}")
        print(f"(simulating {simulated} days took {sim_s:.1f} s)\n")
        print(f"{'days':>5}  {'ledger.json':>11}  {'history.jsonl':>12}  {'operation':<22}"
              f"{'median ms':>10}{'p95 ms':>9}{'max ms':>9}")  # fmt: skip
        for days, size, hist_size, timings in rows:
            for op, (median, p95, worst) in timings.items():
                print(f"{days:>5}  {size / 1024:>8.1f} KB  {hist_size / 1024:>9.1f} KB  {op:<22}"
                      f"{median:>10.2f}{p95:>9.2f}{worst:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
