"""The fault soak: the real ``glimpse-agent run`` for simulated days against a Glimpse emulator
that fails a share of all requests in every way it knows (5xx, an HTML body, a cut answer, a
slow apply past the client's timeout, applied-then-dropped, a never-ending body), or, with
``--outage``, answers 503 to everything for two hours in the middle of the first day's window.
The images come from the Glif emulator, then ViewComfy's, and the captions from Langflow's (then
the templates), each behind a ``Chaos`` that fails the same share of its requests in the same
ways, plus a 429 with Retry-After (``--local-services``: local images and template captions).
The daemon is restarted if it exits (as systemd would). Prints the figures as JSON; exit 1 if a
promise was broken.

    python -m tests.soak.soak --days 7 --faults 0.1          # the full soak (~15 min)
    python -m tests.soak.soak --days 1 --outage              # the outage day (~2 min)
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from glimpse_agent.sandbox.glimpse.faults import RANDOM_KINDS, FaultKind

from .harness import Daemon, Emulator, Services, run_and_report, verdict, write_config

OUTAGE_FROM = timedelta(hours=13)  # after the start day's midnight: the window is 08:00-20:00


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.soak.soak", description=__doc__)
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--faults", type=float, default=0.10, help="share of requests that fail")
    p.add_argument(
        "--kinds",
        default=",".join(RANDOM_KINDS),
        help="fault kinds to draw from (comma-separated; default: all of them)",
    )
    p.add_argument("--outage", action="store_true", help="2 h of 503 instead of random faults")
    p.add_argument("--speed", type=int, default=720, help="fake seconds per real second")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=300.0, help="[glimpse] timeout (fake s)")
    p.add_argument(
        "--service-faults",
        type=float,
        default=None,
        help="share of image and caption requests that fail (default: the same as --faults)",
    )
    p.add_argument(
        "--local-services",
        action="store_true",
        help="local images and template captions instead of the faulty Glif/ViewComfy/Langflow",
    )
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--keep", type=Path, default=None)
    return p.parse_args(argv)


def _service_faults(args: argparse.Namespace) -> float:
    return float(args.faults if args.service_faults is None else args.service_faults)


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    emu = Emulator(args.seed, args.speed)
    faults = emu.world.faults
    services = None
    if not args.local_services:
        services = Services(
            args.seed,
            args.speed,
            probability=0.0 if args.outage else _service_faults(args),
            timeout=args.timeout,
        )
    config = write_config(root, emu.base_url, timeout=args.timeout, services=services)
    daemon = Daemon(config, emu.key, root / "logs")
    start = datetime.now(UTC)
    end = start + timedelta(days=args.days)
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    outage = (midnight + OUTAGE_FROM, midnight + OUTAGE_FROM + timedelta(hours=2))
    in_outage = False
    if not args.outage:
        kinds = tuple(cast(FaultKind, k) for k in args.kinds.split(",") if k)
        faults.randomly(
            args.faults,
            seed=args.seed,
            kinds=kinds,
            slow_seconds=args.timeout * 6,
            endless_every=20.0,
        )
    try:
        daemon.start()
        while datetime.now(UTC) < end:
            now = datetime.now(UTC)
            if args.outage and not in_outage and outage[0] <= now < outage[1]:
                faults.fail(503, times=10**9)
                in_outage = True
            elif in_outage and now >= outage[1]:
                faults.clear()
                in_outage = False
            if not daemon.alive():
                daemon.reap()
                daemon.start()
            time.sleep(0.05 * args.speed)  # 50 ms of real time
        faults.randomly(0)
        faults.clear()
        if services is not None:
            services.quiet()
        alive = daemon.alive()
        stop_code = daemon.stop()
        figures = verdict(emu, daemon, root, start=start, end=end)
        figures["services"] = services.figures() if services is not None else None
    finally:
        daemon.kill()
        emu.stop()
        if services is not None:
            services.stop()
    restarts = daemon.runs - 1
    figures.update(
        {
            "alive_at_end": alive,
            "restarts": restarts,
            "stop_exit_code": stop_code,
            "simulated_days": args.days,
            "speed": args.speed,
            "fault_rate": 0.0 if args.outage else args.faults,
            "service_fault_rate": 0.0 if args.outage or services is None else _service_faults(args),
            "fault_kinds": None if args.outage else args.kinds,
            "outage": [t.isoformat() for t in outage] if args.outage else None,
        }
    )
    return figures


def broken(figures: dict[str, Any], outage: bool) -> list[str]:
    out = [
        f"{name} = {figures[name]}"
        for name in (
            "limit_breaches",
            "retry_after_violations",
            "duplicate_posts",
            "duplicate_likes",
            "duplicate_comments",
            "duplicate_follows",
            "tracebacks",
        )
        if figures[name]
    ]
    for service, seen in (figures.get("services") or {}).items():
        if seen["retry_after_violations"]:
            out.append(f"{service} retry_after_violations = {seen['retry_after_violations']}")
    share = 1.0 if outage else 0.95
    if figures["posts_made"] < figures["posts_planned"] * share:
        out.append(f"posts made {figures['posts_made']} of {figures['posts_planned']} planned")
    if not figures["alive_at_end"] or figures["restarts"]:
        out.append(f"alive at end: {figures['alive_at_end']}, restarts: {figures['restarts']}")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    return run_and_report(
        "tests.soak.soak", args, argv, run, lambda figures: broken(figures, args.outage)
    )


if __name__ == "__main__":
    sys.exit(main())
