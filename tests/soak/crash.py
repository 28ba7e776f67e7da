"""The crash harness: the real ``glimpse-agent run`` against the Glimpse emulator on a faked
clock, SIGKILLed at random moments and at chosen ones (inside a slow ``POST /posts``, right
after an image was generated on Glimpse and before it is posted, while a ledger write's temporary
file exists), restarted after each kill. At the end: duplicates, whether the ledger opens,
posts made against planned. Prints the figures as JSON; exit 1 if a promise was broken.

    python -m tests.soak.crash --kills 200 --days 3            # the full run (~15 min)
    python -m tests.soak.crash --kills 12 --days 0.75 --speed 720   # a short one
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .harness import Daemon, Emulator, run_and_report, verdict, write_config

GENERATE = "POST /images/generate"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.soak.crash", description=__doc__)
    p.add_argument("--kills", type=int, default=200)
    p.add_argument("--days", type=float, default=3.0)
    p.add_argument("--speed", type=int, default=360, help="fake seconds per real second")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--slow-post-kills", type=int, default=25, help="kills inside a slow POST")
    p.add_argument("--slow-seconds", type=float, default=600.0, help="the slow apply's delay")
    p.add_argument("--timeout", type=float, default=120.0, help="[glimpse] timeout (fake s)")
    p.add_argument("--out", type=Path, default=None, help="also write the figures here")
    p.add_argument("--keep", type=Path, default=None, help="keep state and logs in this folder")
    return p.parse_args(argv)


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    emu = Emulator(args.seed, args.speed)
    faults = emu.world.faults
    config = write_config(root, emu.base_url, timeout=args.timeout, glimpse_images=True)
    daemon = Daemon(config, emu.key, root / "logs")
    start = datetime.now(UTC)
    end = start + timedelta(days=args.days)
    # A little more often than kills/duration: the chosen moments do not come on demand.
    mean_gap = 0.8 * (end - start).total_seconds() / max(1, args.kills)
    kills: Counter[str] = Counter()
    partial_ledger_writes = 0
    state = root / "state"
    poll = 0.002 * args.speed  # 2 ms of real time, in fake seconds
    next_random = start + timedelta(seconds=rng.expovariate(1 / mean_gap))
    slow_seen = generated_seen = 0
    slow_kill_at: datetime | None = None
    # Chosen moments take at most a tenth of the kills each (the slow posts their own count).
    tenth = max(1, args.kills // 10)
    caps = {
        "slow_post": args.slow_post_kills,
        "after_generate": tenth,
        "ledger_write": tenth,
    }
    try:
        while datetime.now(UTC) < end:
            now = datetime.now(UTC)
            if not daemon.alive():
                daemon.reap()
                daemon.start()
            total = sum(kills.values())
            if (
                kills["slow_post"] < args.slow_post_kills
                and total < args.kills
                and not faults.pending
            ):
                faults.slow_apply(args.slow_seconds, path="/posts", method="POST")
            served = faults.served_by_kind.get("slow_apply", 0)
            if served > slow_seen:
                slow_seen = served
                # Somewhere inside the client's wait, never past its timeout.
                slow_kill_at = now + timedelta(seconds=rng.uniform(0, args.timeout / 2))
            reason = None
            if slow_kill_at is not None and now >= slow_kill_at:
                reason, slow_kill_at = "slow_post", None
            generated = emu.world.stats.requests_by_route.get(GENERATE, 0)
            if reason is None and generated > generated_seen:
                generated_seen = generated
                if rng.random() < 0.5:
                    reason = "after_generate"
            if reason is None and rng.random() < 0.05 and any(state.glob(".ledger.json.*.tmp")):
                reason = "ledger_write"
            if reason is not None and kills[reason] >= caps.get(reason, args.kills):
                reason = None
            # Random kills also take what the chosen moments leave unused.
            if reason == "random" or (reason is None and now >= next_random):
                owed = max(0, args.slow_post_kills - kills["slow_post"])
                reason = "random" if total + owed < args.kills else None
                next_random = now + timedelta(seconds=rng.expovariate(1 / mean_gap))
            if reason is not None and total < args.kills:
                daemon.kill()
                kills[reason] += 1
                if reason == "ledger_write" or any(state.glob(".ledger.json.*.tmp")):
                    partial_ledger_writes += 1
            time.sleep(poll)
        daemon.reap()
        if not daemon.alive():
            daemon.start()
            time.sleep(120)
        stop_code = daemon.stop()
        figures = verdict(emu, daemon, root, start=start, end=end)
    finally:
        daemon.kill()
        emu.stop()
    figures.update(
        {
            "kills": sum(kills.values()),
            "kills_by_moment": dict(kills),
            "kills_with_a_ledger_write_in_flight": partial_ledger_writes,
            "simulated_days": args.days,
            "speed": args.speed,
            "stop_exit_code": stop_code,
        }
    )
    return figures


def broken(figures: dict[str, Any]) -> list[str]:
    """The promises of issue 11 this run broke."""
    out = []
    for name in ("duplicate_posts", "duplicate_likes", "duplicate_comments", "duplicate_follows"):
        if figures[name]:
            out.append(f"{name} = {figures[name]}")
    if figures.get("status_exit") != 0 or not figures.get("status_json_valid"):
        out.append("the ledger does not open as valid `status --json`")
    if figures["posts_made"] < figures["posts_planned"] * 17 / 18:
        out.append(f"posts made {figures['posts_made']} of {figures['posts_planned']} planned")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    return run_and_report("tests.soak.crash", args, argv, run, broken)


if __name__ == "__main__":
    sys.exit(main())
