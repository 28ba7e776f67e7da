"""`glimpse-agent run` as a real process against the Glimpse emulator on loopback: it tells
systemd it is ready, posts when its plan says so, engages, writes its heartbeat file, and stops
cleanly on SIGTERM well within 30 s."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from glimpse_agent.clock import SystemClock
from glimpse_agent.sandbox.glimpse_app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse_world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer


@pytest.fixture
def world() -> Iterator[tuple[GlimpseWorld, str]]:
    world = GlimpseWorld(SystemClock(), seed=3, population=6)
    with LoopbackServer(create_glimpse_app(world)) as server:
        yield world, server.url + API_ROOT
        world.faults.release()


def _hhmm(at: datetime) -> str:
    return f"{at:%H:%M}"


def _write_agent(tmp: Path, base_url: str, key: str) -> Path:
    now = datetime.now(UTC)
    # A window that opened 40 minutes ago: its one post slot (the middle, no jitter) is ~10
    # minutes late, well within the misfire grace, so the daemon posts right after start.
    start, end = now - timedelta(minutes=40), now + timedelta(minutes=20)
    (tmp / "persona.toml").write_text(
        f'name = "proc"\ntimezone = "UTC"\nactive_hours = ["{_hhmm(start)}", "{_hhmm(end)}"]\n'
        'posts_per_day = 1\nmin_post_gap_minutes = 0\ntopics = ["lighthouses at dusk"]\n'
        'hashtags = ["#aiart"]\n[engagement]\nsessions_per_day = 2\nlikes_per_day = 10\n',
        encoding="utf-8",
    )
    agent = tmp / "agent.toml"
    agent.write_text(
        f'persona = "persona.toml"\nstate_dir = "state"\n[glimpse]\nbase_url = "{base_url}"\n'
        'api_key = "${GLIMPSE_TEST_KEY}"\ntimeout = 5\n[images]\norder = ["local"]\n'
        '[images.local]\nwidth = 128\nheight = 128\n[captions]\norder = ["template"]\n'
        "[daemon]\njitter_minutes = 0\nmisfire_grace_minutes = 60\nheartbeat_minutes = 1\n",
        encoding="utf-8",
    )
    return agent


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_run_posts_engages_and_stops_on_sigterm(
    tmp_path: Path, world: tuple[GlimpseWorld, str]
) -> None:
    """The daemon posts its due slot, engages, notifies systemd, and exits 0 on SIGTERM < 30 s."""
    glimpse, base_url = world
    agent_id, key = glimpse.create_agent("proc")
    config = _write_agent(tmp_path, base_url, key)
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(0.1)
    env = {
        **os.environ,
        "GLIMPSE_TEST_KEY": key,
        "NOTIFY_SOCKET": str(notify_path),
        "WATCHDOG_USEC": "2000000",
    }
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "glimpse_agent", "run", "-c", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    messages: list[str] = []

    def drain() -> None:
        while True:
            try:
                messages.append(listener.recv(256).decode())
            except TimeoutError:
                return

    try:
        assert _wait(lambda: len(glimpse.posts_by(agent_id)) == 1, 30), "no post within 30 s"
        assert _wait(lambda: bool(glimpse.likes_by(agent_id)), 20), "no engagement"
        drain()
        assert "READY=1" in messages
        assert "WATCHDOG=1" in messages, "the watchdog is pinged from the event loop"
        assert (tmp_path / "state" / "heartbeat").is_file()
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=10)
        listener.close()
    assert code == 0, err
    assert stopped_in < 30
    assert "Traceback" not in err
    assert key not in err and key not in out
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "daemon_ready" in events and "posted" in events and "daemon_stopped" in events
    assert len(glimpse.posts_by(agent_id)) == 1, "exactly one post, never a duplicate"


def test_second_daemon_on_same_state_dir_exits_3(
    tmp_path: Path, world: tuple[GlimpseWorld, str]
) -> None:
    """A second `run` on a state dir already in use fails fast with exit 3 and a clear message."""
    glimpse, base_url = world
    _, key = glimpse.create_agent("proc")
    config = _write_agent(tmp_path, base_url, key)
    env = {**os.environ, "GLIMPSE_TEST_KEY": key}
    env.pop("NOTIFY_SOCKET", None)
    first = subprocess.Popen(
        [sys.executable, "-m", "glimpse_agent", "run", "-c", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait(lambda: (tmp_path / "state" / "heartbeat").is_file(), 30)
        second = subprocess.run(
            [sys.executable, "-m", "glimpse_agent", "run", "-c", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 3
        assert "already running" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
        first.communicate(timeout=10)
