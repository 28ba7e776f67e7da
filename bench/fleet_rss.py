"""Idle memory and start-up time of a fleet: ``glimpse-agent run --fleet DIR`` with 1, 16, 64 and
256 personas (fresh ledgers, local images, template captions: no SDK), against the Glimpse
emulator served from this process on loopback (so its memory is not counted).

For each size: a fresh folder of N agent.toml files (every slot of the day's plan in the future,
so the fleet is idle once started), the fleet started as a real process, the time from spawn to
``fleet status`` showing all N "running" (start-up), then, after a few idle seconds, RSS
(``/proc/PID/status``) and PSS / USS (``/proc/PID/smaps_rollup``). The marginal cost per persona
is the slope between two sizes. Also: the day's planned post times of the largest fleet, per
second, to show the jitter spreading them.

    .venv/bin/python bench/fleet_rss.py                      # 1, 16, 64, 256
    .venv/bin/python bench/fleet_rss.py --sizes 1 16 --json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
_CLI = (sys.executable, "-m", "glimpse_agent", "--log-level", "warning")


def _write_fleet(root: Path, n: int, base_url: str, keys: list[str]) -> Path:
    now = datetime.now(UTC)
    # A window that opens in two hours: every slot of the day is in the future (idle).
    start, end = now + timedelta(hours=2), now + timedelta(hours=5)
    if start.date() != end.date():  # keep the window inside one UTC day
        start, end = now + timedelta(minutes=30), now + timedelta(minutes=40)
    fleet = root / "fleet.d"
    fleet.mkdir(parents=True)
    for i in range(n):
        name = f"bench_{i:03d}"
        home = root / name
        home.mkdir()
        (home / "persona.toml").write_text(
            f'name = "{name}"\ntimezone = "UTC"\n'
            f'active_hours = ["{start:%H:%M}", "{end:%H:%M}"]\nposts_per_day = 2\n'
            'min_post_gap_minutes = 30\ntopics = ["lighthouses at dusk"]\nhashtags = ["#aiart"]\n'
            "[engagement]\nsessions_per_day = 1\n",
            encoding="utf-8",
        )
        (fleet / f"{name}.toml").write_text(
            f'persona = "{home / "persona.toml"}"\nstate_dir = "{home / "state"}"\n'
            f'[glimpse]\nbase_url = "{base_url}"\napi_key = "{keys[i]}"\ntimeout = 30\n'
            '[images]\norder = ["local"]\n[captions]\norder = ["template"]\n',
            encoding="utf-8",
        )
    return fleet


def _memory(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()

    def kib(text: str, key: str) -> float:
        for line in text.splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
        return 0.0

    uss = kib(rollup, "Private_Clean") + kib(rollup, "Private_Dirty")
    return {
        "rss_mib": kib(status, "VmRSS") / 1024,
        "hwm_mib": kib(status, "VmHWM") / 1024,
        "pss_mib": kib(rollup, "Pss") / 1024,
        "uss_mib": uss / 1024,
        "threads": kib(status, "Threads"),
    }


def measure(n: int, world: Any, base_url: str, idle_seconds: float) -> dict[str, Any]:
    from glimpse_agent.errors import GlimpseAgentError
    from glimpse_agent.run.fleet_control import request

    keys = [world.create_agent(f"b{n}_{i:03d}")[1] for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="glimpse-fleet-bench-") as tmp:
        root = Path(tmp)
        fleet = _write_fleet(root, n, base_url, keys)
        control = root / "ctl.sock"
        env = {**os.environ}
        env.pop("NOTIFY_SOCKET", None)
        started = time.monotonic()
        err = (root / "fleet.err").open("wb")
        proc = subprocess.Popen(
            [*_CLI, "run", "--fleet", str(fleet), "--control", str(control)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
        ready_s = None
        counts: dict[str, int] = {}
        try:
            deadline = started + 300
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    counts = request(control, {"command": "status"}, timeout=30).get("counts", {})
                except GlimpseAgentError:
                    counts = {}
                if counts.get("running") == n:
                    ready_s = time.monotonic() - started
                    break
                time.sleep(0.1)
            time.sleep(idle_seconds)
            memory = _memory(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = None
            err.close()
        failed = (root / "fleet.err").read_text(errors="replace").count('"level": "error"')
    return {
        "personas": n,
        "startup_s": ready_s,
        "states": counts,
        **memory,
        "exit_code": code,
        "error_lines": failed,
    }


def spread(n: int) -> dict[str, Any]:
    """The planned post times of ``n`` personas alike but for their names (window 08-20 UTC,
    one post a day), with and without the default jitter."""
    from datetime import date

    from glimpse_agent.persona import Persona
    from glimpse_agent.planner.dayplan import plan_day

    out: dict[str, Any] = {}
    for jitter in (0, 20):
        times = []
        for i in range(n):
            persona = Persona.model_validate(
                {
                    "name": f"bench_{i:03d}",
                    "timezone": "UTC",
                    "active_hours": ["08:00", "20:00"],
                    "posts_per_day": 1,
                    "topics": ["x"],
                }
            )
            plan = plan_day(persona, date(2026, 3, 2), posts_allowed=1, jitter_minutes=jitter)
            times += [s.at for s in plan.posts]
        per_s = Counter(t.replace(microsecond=0) for t in times)
        per_min = Counter(t.replace(second=0, microsecond=0) for t in times)
        out[f"jitter_{jitter}"] = {
            "distinct_seconds": len(per_s),
            "max_per_second": max(per_s.values()),
            "max_per_minute": max(per_min.values()),
            "span_s": (max(times) - min(times)).total_seconds(),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/fleet_rss.py", description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--idle", type=float, default=5.0, help="idle seconds before reading memory")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from glimpse_agent.clock import SystemClock
    from glimpse_agent.logs import configure_logging
    from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
    from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
    from glimpse_agent.sandbox.server import LoopbackServer

    configure_logging("error", json=True)
    world = GlimpseWorld(SystemClock(), seed=1, population=12)
    rows = []
    with LoopbackServer(create_glimpse_app(world)) as server:
        for n in args.sizes:
            rows.append(measure(n, world, server.url + API_ROOT, args.idle))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    slopes = []
    for a, b in itertools.pairwise(rows):
        dn = b["personas"] - a["personas"]
        slopes.append(
            {
                "from": a["personas"],
                "to": b["personas"],
                "rss_kib_per_persona": (b["rss_mib"] - a["rss_mib"]) * 1024 / dn,
                "uss_kib_per_persona": (b["uss_mib"] - a["uss_mib"]) * 1024 / dn,
            }
        )
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fleets": rows,
        "marginal": slopes,
        "spread": spread(max(args.sizes)),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"machine: {result['machine']}  ({result['at']})\n")
    print("| personas | start-up (all running) | RSS | PSS | USS | threads |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        s = f"{r['startup_s']:.2f} s" if r["startup_s"] is not None else f"not ready {r['states']}"
        print(
            f"| {r['personas']} | {s} | {r['rss_mib']:.1f} MiB | {r['pss_mib']:.1f} MiB | "
            f"{r['uss_mib']:.1f} MiB | {r['threads']:.0f} |"
        )
    print("\n| from → to | RSS per persona | USS per persona |\n| --- | --- | --- |")
    for s in slopes:
        print(
            f"| {s['from']} → {s['to']} | {s['rss_kib_per_persona']:.0f} KiB | "
            f"{s['uss_kib_per_persona']:.0f} KiB |"
        )
    sp = result["spread"]
    print(f"\nplanned post times of {max(args.sizes)} personas alike but for their names:")
    for key, v in sp.items():
        print(
            f"  {key}: {v['distinct_seconds']} distinct seconds, at most {v['max_per_second']} "
            f"a second, {v['max_per_minute']} a minute, over {v['span_s']:.0f} s"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
