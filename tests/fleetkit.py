"""Writing a fleet's files for the tests: one persona file, one agent.toml and one state dir per
persona, the agent.toml files side by side in one folder (what ``run --fleet DIR`` reads)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _hhmm(at: datetime) -> str:
    return f"{at:%H:%M}"


def write_member(
    root: Path,
    name: str,
    *,
    base_url: str,
    key: str,
    fleet_dir: Path | None = None,
    window: tuple[str, str] | None = None,
    posts_per_day: int = 1,
    jitter_minutes: int = 0,
    timeout: float = 5.0,
    extra_daemon: str = "",
) -> Path:
    """``<fleet_dir>/<name>.toml`` naming ``<root>/<name>/persona.toml`` and state dir
    ``<root>/<name>/state``. Default window: opened 40 minutes ago, so the one post slot (the
    middle, no jitter) is ~10 minutes late, within the misfire grace: it posts right after start."""
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    if window is None:
        now = datetime.now(UTC)
        window = (_hhmm(now - timedelta(minutes=40)), _hhmm(now + timedelta(minutes=20)))
    (home / "persona.toml").write_text(
        f'name = "{name}"\ntimezone = "UTC"\nactive_hours = ["{window[0]}", "{window[1]}"]\n'
        f"posts_per_day = {posts_per_day}\nmin_post_gap_minutes = 0\n"
        'topics = ["lighthouses at dusk", "foxes in snow"]\nhashtags = ["#aiart"]\n'
        "[engagement]\nsessions_per_day = 1\nlikes_per_day = 4\n",
        encoding="utf-8",
    )
    folder = fleet_dir or root / "fleet.d"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.toml"
    config.write_text(
        f'persona = "{home / "persona.toml"}"\nstate_dir = "{home / "state"}"\n'
        f'[glimpse]\nbase_url = "{base_url}"\napi_key = "{key}"\ntimeout = {timeout}\n'
        '[images]\norder = ["local"]\n[images.local]\nwidth = 64\nheight = 64\n'
        '[captions]\norder = ["template"]\n'
        f"[daemon]\njitter_minutes = {jitter_minutes}\nmisfire_grace_minutes = 60\n"
        f"heartbeat_minutes = 1\n{extra_daemon}",
        encoding="utf-8",
    )
    return config


async def wait_for(predicate: Callable[[], Awaitable[bool]], within: float) -> bool:
    """True as soon as ``await predicate()`` is, False once ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False
