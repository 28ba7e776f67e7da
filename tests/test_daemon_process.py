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
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer
from polling import wait_until


@pytest.fixture
def world() -> Iterator[tuple[GlimpseWorld, str]]:
    world = GlimpseWorld(SystemClock(), seed=3, population=6)
    with LoopbackServer(create_glimpse_app(world)) as server:
        yield world, server.url + API_ROOT
        world.faults.release()


def _hhmm(at: datetime) -> str:
    return f"{at:%H:%M}"


def _write_agent(tmp: Path, base_url: str, key: str, *, glimpse_images: bool = False) -> Path:
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
    # Glimpse's own generator first (BYOK, key stored with a settings PUT), the offline one next.
    order = '["glimpse", "local"]' if glimpse_images else '["local"]'
    byok = '[images.glimpse]\nprovider = "huggingface"\napi_key = "hf_test"\nmode = "stored"\n'
    agent = tmp / "agent.toml"
    agent.write_text(
        f'persona = "persona.toml"\nstate_dir = "state"\n[glimpse]\nbase_url = "{base_url}"\n'
        f'api_key = "${{GLIMPSE_TEST_KEY}}"\ntimeout = 5\n[images]\norder = {order}\n'
        "[images.local]\nwidth = 128\nheight = 128\n"
        + (byok if glimpse_images else "")
        + '[captions]\norder = ["template"]\n'
        "[daemon]\njitter_minutes = 0\nmisfire_grace_minutes = 60\nheartbeat_minutes = 1\n",
        encoding="utf-8",
    )
    return agent


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
        assert wait_until(lambda: len(glimpse.posts_by(agent_id)) == 1, 30), "no post within 30 s"
        assert wait_until(lambda: bool(glimpse.likes_by(agent_id)), 20), "no engagement"
        drain()
        assert "READY=1" in messages
        assert "WATCHDOG=1" in messages, "the watchdog is pinged from the event loop"
        assert (tmp_path / "state" / "heartbeat").is_file()
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        stopped_in = time.monotonic() - sent
        drain()
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=10)
        listener.close()
    assert code == 0, err
    assert stopped_in < 30
    assert messages[-1] == "STOPPING=1", messages
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
        assert wait_until(lambda: (tmp_path / "state" / "heartbeat").is_file(), 30)
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


#: Every route of the emulator that changes something on Glimpse.
WRITE_ROUTES = frozenset(
    {
        "POST /posts",
        "POST /posts/{post_id}/like",
        "POST /posts/{post_id}/dislike",
        "DELETE /posts/{post_id}/reaction",
        "POST /posts/{post_id}/comment",
        "POST /agents/{agent_id}/follow",
        "DELETE /agents/{agent_id}/follow",
        "DELETE /posts/{post_id}",
        "PATCH /agents/me",
        "PUT /agents/me/settings/image-generation",
        "DELETE /agents/me/settings/image-generation",
        "POST /images/generate",
        "POST /heartbeat",
    }
)


def test_run_dry_run_logs_every_write_and_sends_none(
    tmp_path: Path, world: tuple[GlimpseWorld, str]
) -> None:
    """`run --dry-run` with a post due and Glimpse's BYOK generator configured: the post, the
    likes, the follow-back and the image settings are log lines; Glimpse sees only reads."""
    glimpse, base_url = world
    agent_id, key = glimpse.create_agent("proc")
    npc = glimpse.npc_ids[0]
    glimpse.follow_as(npc, agent_id)
    for i in range(4):
        glimpse.post_as(npc, f"lighthouses at dusk, study {i} #aiart")
    config = _write_agent(tmp_path, base_url, key, glimpse_images=True)
    env = {**os.environ, "GLIMPSE_TEST_KEY": key}
    env.pop("NOTIFY_SOCKET", None)
    before = dict(glimpse.stats.requests_by_route)
    proc = subprocess.Popen(
        [sys.executable, "-m", "glimpse_agent", "run", "-c", str(config), "--dry-run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        followers = "GET /agents/{agent_id}/followers"

        def sessions() -> int:
            return glimpse.stats.requests_by_route.get(followers, 0) - before.get(followers, 0)

        # Both engagement sessions are due (one before the post, one after it); SIGTERM lets
        # the one in flight finish.
        assert wait_until(lambda: sessions() >= 2, 30), "no engagement"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
    assert code == 0, err
    after = glimpse.stats.requests_by_route
    sent = {r: n - before.get(r, 0) for r, n in after.items() if n != before.get(r, 0)}
    assert not WRITE_ROUTES & set(sent), sent
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "dry_run_generate" in events and "dry_run_post" in events, events
    assert "dry_run_like" in events and "dry_run_follow" in events, events
    assert glimpse.posts_by(agent_id) == [] and glimpse.likes_by(agent_id) == []
    assert glimpse.follows_by(agent_id) == []


def test_run_waits_for_a_glimpse_that_is_down_at_start(tmp_path: Path) -> None:
    """Glimpse unreachable when the daemon starts: it stays up, retries, and posts its due
    slot once Glimpse answers — instead of exiting into a restart loop."""
    world = GlimpseWorld(SystemClock(), seed=3, population=6)
    agent_id, key = world.create_agent("proc")
    server = LoopbackServer(create_glimpse_app(world))  # port bound, nobody listening yet
    config = _write_agent(tmp_path, server.url + API_ROOT, key)
    env = {**os.environ, "GLIMPSE_TEST_KEY": key}
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "glimpse_agent", "run", "-c", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Alive (heartbeat written) while start-up cannot reach Glimpse.
        assert wait_until(lambda: (tmp_path / "state" / "heartbeat").is_file(), 30)
        time.sleep(1.0)
        assert proc.poll() is None, "the daemon exited instead of waiting for Glimpse"
        server.start()
        assert wait_until(lambda: len(world.posts_by(agent_id)) == 1, 40), (
            "no post once Glimpse is up"
        )
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
        world.faults.release()
        server.stop()
    assert code == 0, err
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "startup_retry" in events and "daemon_ready" in events
    assert events.index("startup_retry") < events.index("daemon_ready")
    assert "Traceback" not in err
