"""The fleet soak: the real ``glimpse-agent run --fleet DIR`` with 20 personas for simulated days
against the Glimpse emulator, on the harness's faked clock. Three of them are broken on purpose:
``refused`` has a key Glimpse refuses, ``hangs`` talks to a Glimpse of its own that stops
answering a third of the way in (every request hangs past the client's timeout), ``paused`` is
paused halfway with ``glimpse-agent fleet pause``. Every other persona must post exactly its
plan, never be rate-limited (no 429) and never post twice; the broken ones must be reported in
``fleet status`` and never post as (or for) anyone else. Prints the figures as JSON; exit 1 if a
promise broke.

    python -m tests.soak.fleet --days 7 --speed 720         # the week (~15 min)
    python -m tests.soak.fleet --days 1 --speed 1440        # one day (~1 min)

``[glimpse] timeout`` is in fake seconds (1800 s: 2.5 s real at x720, 1.25 s at x1440), and so
are the daemon's misfire grace (15 min: 1.25 s real at x720) and every deadline: on a loaded
2-core machine a higher speed squeezes them below what one process hosting 20 personas needs.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from glimpse_agent.clock import SystemClock
from glimpse_agent.errors import GlimpseAgentError
from glimpse_agent.run.fleet_control import request
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.toml_writer import write_agent_toml

from .harness import (
    Emulator,
    _Server,
    events,
    glimpse_agent_exe,
    ledger_posts,
    real,
    run_and_report,
)

POSTS_PER_DAY = 4
BROKEN = ("refused", "hangs", "paused")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.soak.fleet", description=__doc__)
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--personas", type=int, default=20, help="in all, the three broken ones too")
    p.add_argument("--speed", type=int, default=1440, help="fake seconds per real second")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1800.0, help="[glimpse] timeout (fake s)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--keep", type=Path, default=None)
    return p.parse_args(argv)


def _write(root: Path, name: str, base_url: str, key: str, timeout: float) -> None:
    """One persona: a window 08:00-20:00 UTC, four posts and two engagement sessions a day,
    and the daemon's own defaults (jitter, misfire grace) as a user would leave them."""
    home = root / "personas" / name
    home.mkdir(parents=True, exist_ok=True)
    persona = home / "persona.toml"
    persona.write_text(
        f'name = "{name}"\ntimezone = "UTC"\nactive_hours = ["08:00", "20:00"]\n'
        f"posts_per_day = {POSTS_PER_DAY}\nmin_post_gap_minutes = 60\n"
        'topics = ["lighthouses at dusk", "foxes in snow", "tide pools", "old trams"]\n'
        'hashtags = ["#aiart"]\n[engagement]\nsessions_per_day = 2\nlikes_per_day = 6\n'
        "comments_per_day = 1\nfollows_per_day = 1\n",
        encoding="utf-8",
    )
    raw: dict[str, Any] = {
        "persona": str(persona),
        "state_dir": str(home / "state"),
        "glimpse": {"base_url": base_url, "api_key": key, "timeout": timeout},
        "images": {"order": ["local"], "local": {"width": 64, "height": 64}},
        "captions": {"order": ["template"]},
        "daemon": {"heartbeat_minutes": 10},
    }
    write_agent_toml(root / "fleet.d" / f"{name}.toml", raw)


def _planned(start: datetime, end: datetime) -> int:
    days, day = 0, start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        if start <= day + timedelta(hours=8) and day + timedelta(hours=20) <= end:
            days += 1
        day += timedelta(days=1)
    return days * POSTS_PER_DAY


def _fleet(control: Path, **message: str) -> dict[str, Any]:
    """What ``glimpse-agent fleet <command> --json`` asks, with a timeout in real seconds (the
    command's own is in the faked clock's, which runs 1440 times faster here)."""
    try:
        return request(control, message, timeout=real(120))
    except GlimpseAgentError as exc:
        return {"ok": False, "error": str(exc)}


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    emu = Emulator(args.seed, args.speed)
    hang_world = GlimpseWorld(SystemClock(), seed=args.seed + 1, population=0)
    hang_server = _Server(create_glimpse_app(hang_world))
    hang_server.speed = args.speed
    hang_server.start()
    hang_url = hang_server.url + API_ROOT
    agents: dict[str, tuple[GlimpseWorld, str, str]] = {}
    healthy = [f"p{i:02d}" for i in range(args.personas - len(BROKEN))]
    for name in [*healthy, *BROKEN]:
        world, url = (hang_world, hang_url) if name == "hangs" else (emu.world, emu.base_url)
        agent_id, key = world.create_agent(name)
        if name == "refused":
            key = "glm_" + "0" * 40  # a key Glimpse never issued
        agents[name] = (world, agent_id, key)
        _write(root, name, url, key, args.timeout)
    control = root / "fleet.sock"
    logs = root / "fleet.err"
    start = datetime.now(UTC)
    end = start + timedelta(days=args.days)
    half, third = start + (end - start) / 2, start + (end - start) / 3
    paused_at: datetime | None = None
    hung_at: datetime | None = None
    status_half: dict[str, Any] = {}
    with logs.open("wb") as err:
        proc = subprocess.Popen(
            [
                glimpse_agent_exe(),
                "run",
                "--fleet",
                str(root / "fleet.d"),
                "--control",
                str(control),
            ],
            stdout=err,
            stderr=err,
        )
    try:
        while datetime.now(UTC) < end and proc.poll() is None:
            if hung_at is None and datetime.now(UTC) >= third:
                hang_world.faults.hang(3600.0, times=10**9)  # real seconds: past any timeout
                hung_at = datetime.now(UTC)
            if paused_at is None and datetime.now(UTC) >= half:
                answer = _fleet(control, command="pause", name="paused")
                paused_at = datetime.now(UTC)
                status_half = {"pause_answer": answer, "status": _fleet(control, command="status")}
            time.sleep(0.05 * args.speed)  # 50 ms of real time
        status_end = _fleet(control, command="status")
        alive = proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        try:
            stop_code: int | None = proc.wait(timeout=real(60))
        except subprocess.TimeoutExpired:
            proc.kill()
            stop_code = None
        # Before the hung requests are let go (they would be applied then, after the fleet).
        posts_seen = {
            name: world.posts_by(agent_id) for name, (world, agent_id, _) in agents.items()
        }
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        hang_world.faults.release()
        hang_server.stop()
        emu.stop()
    stderr = logs.read_text(encoding="utf-8", errors="replace")
    rows = {row["persona"]: row for row in status_end.get("personas", [])}
    planned = _planned(start, end)
    per: dict[str, dict[str, Any]] = {}
    for name, (world, agent_id, _) in agents.items():
        posts = posts_seen[name]
        state = root / "personas" / name / "state"
        known = ledger_posts(state)
        by_slot = Counter(doc.get("slot_id") for doc in known)
        unknown = {p.id for p in posts} - {doc["post_id"] for doc in known}
        per[name] = {
            "posts": len([p for p in posts if start <= p.created_at.replace(tzinfo=UTC) <= end]),
            "posts_after_pause": len(
                [p for p in posts if paused_at and p.created_at.replace(tzinfo=UTC) > paused_at]
            ),
            "posts_after_hang": len(
                [p for p in posts if hung_at and p.created_at.replace(tzinfo=UTC) > hung_at]
            ),
            "duplicates": len(unknown) + sum(n - 1 for s, n in by_slot.items() if s and n > 1),
            "rate_limited": world.stats.rate_limited_count(agent_id),
            "state": rows.get(name, {}).get("state"),
            "last_error": rows.get(name, {}).get("last_error") or rows.get(name, {}).get("detail"),
        }
    found = events(stderr)
    own_lines: Counter[str | None] = Counter()
    for line in stderr.splitlines():
        if line.startswith("{"):
            try:
                own_lines[json.loads(line).get("persona")] += 1
            except ValueError:
                continue
    return {
        "personas": len(agents),
        "simulated_days": args.days,
        "speed": args.speed,
        "posts_planned_each": planned,
        "per_persona": per,
        "healthy_posts": {n: per[n]["posts"] for n in healthy},
        "alive_at_end": alive,
        "stop_exit_code": stop_code,
        "paused_at": paused_at.isoformat() if paused_at else None,
        "hung_at": hung_at.isoformat() if hung_at else None,
        "pause_answer_ok": bool(
            status_half.get("pause_answer", {}).get(
                "ok", "persona" in status_half.get("pause_answer", {})
            )
        ),
        "status_at_half": {
            r["persona"]: r["state"] for r in status_half.get("status", {}).get("personas", [])
        },
        "tracebacks": stderr.count("Traceback (most recent call last)"),
        "plain_text_stderr_lines": sum(
            1 for line in stderr.splitlines() if line.strip() and not line.startswith("{")
        ),
        "keys_in_logs": sum(1 for _, _, key in agents.values() if key in stderr),
        "events": {
            k: found[k]
            for k in ("posted", "persona_failed", "persona_paused", "job_failed", "slots_missed")
            if found[k]
        },
        "log_lines_without_persona": own_lines.get(None, 0),
    }


def broken(figures: dict[str, Any]) -> list[str]:
    out = []
    per = figures["per_persona"]
    planned = figures["posts_planned_each"]
    for name, row in per.items():
        if row["duplicates"]:
            out.append(f"{name}: {row['duplicates']} duplicate posts")
        if row["rate_limited"]:
            out.append(f"{name}: rate-limited {row['rate_limited']} times (429)")
        if name not in BROKEN and row["posts"] != planned:
            out.append(f"{name}: posted {row['posts']} of {planned} planned")
        if name not in BROKEN and row["state"] != "running":
            out.append(f"{name}: {row['state']} at the end")
    if per["refused"]["posts"] or per["refused"]["state"] != "failed":
        out.append(f"refused: {per['refused']}")
    if per["paused"]["posts_after_pause"] or per["paused"]["state"] != "paused":
        out.append(f"paused: {per['paused']}")
    if per["hangs"]["posts_after_hang"]:
        out.append(f"hangs: posted while its Glimpse hung: {per['hangs']}")
    if not per["hangs"]["last_error"]:
        out.append("hangs: no error reported in fleet status")
    if not figures["pause_answer_ok"] or figures["status_at_half"].get("paused") != "paused":
        out.append(f"the pause did not show in fleet status: {figures['status_at_half']}")
    if not figures["alive_at_end"] or figures["stop_exit_code"] != 0:
        out.append(f"fleet alive {figures['alive_at_end']}, exit {figures['stop_exit_code']}")
    if figures["tracebacks"] or figures["keys_in_logs"]:
        out.append(f"tracebacks {figures['tracebacks']}, keys in logs {figures['keys_in_logs']}")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    return run_and_report("tests.soak.fleet", args, argv, run, broken)


if __name__ == "__main__":
    sys.exit(main())
