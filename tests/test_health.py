"""Ready early, healthy honestly: the daemon says READY=1 while Glimpse is still down, waits
for it while ready (STATUS= and `health` say so), and `health` turns unhealthy once Glimpse has
been unreachable, or nothing could be done, for longer than ``[ops] unhealthy_after_minutes``
— and at once when the loop is stuck or gone."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from glimpse_agent.agent import Outcome
from glimpse_agent.clock import SystemClock
from glimpse_agent.health import judge
from glimpse_agent.notify import Heartbeat, SystemdNotifier, read_heartbeat
from glimpse_agent.planner import DayPlan, Slot
from glimpse_agent.run.daemon import Daemon
from polling import wait_until

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
PATIENCE = timedelta(minutes=30)


def _beat(**kw: object) -> Heartbeat:
    fields: dict[str, object] = {"at": NOW - timedelta(seconds=20), "state": "running"}
    fields.update(kw)
    return Heartbeat(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the verdict


@pytest.mark.parametrize(
    ("beat", "healthy", "says"),
    [
        (None, False, "not running"),
        (_beat(), True, "running"),
        (_beat(state="starting"), True, "starting"),
        (_beat(state="stopped"), False, "stopped"),
        (_beat(state="stuck", action="d/post/1", action_since=NOW), False, "stuck: d/post/1"),
        (_beat(at=NOW - timedelta(minutes=11)), False, "no progress for 11 min"),
        (
            _beat(glimpse_down_since=NOW - timedelta(minutes=29), glimpse_error="cannot connect"),
            True,
            "waiting for Glimpse for 29 min (unhealthy after 30 min): cannot connect",
        ),
        (
            _beat(glimpse_down_since=NOW - timedelta(minutes=31), glimpse_error="HTTP 503"),
            False,
            "Glimpse unreachable for 31 min (since 2026-12-08T11:29:00Z): HTTP 503",
        ),
        (
            _beat(failing_since=NOW - timedelta(minutes=45), failure="post: image failed"),
            False,
            "nothing could be done for 45 min: every action since 2026-12-08T11:15:00Z failed, "
            "the last with: post: image failed",
        ),
        (_beat(failing_since=NOW - timedelta(minutes=5)), True, "actions failing for 5 min"),
        (
            _beat(waiting_for="the state directory", waiting_since=NOW - timedelta(hours=2)),
            False,
            "waiting for the state directory for 2.0 h",
        ),
        (_beat(done_at=NOW - timedelta(minutes=3)), True, "last action done 3 min ago"),
    ],
)
def test_the_verdict_names_the_fault_and_waits_its_patience_out(
    beat: Heartbeat | None, healthy: bool, says: str
) -> None:
    """Stuck, stopped, stale or absent is unhealthy at once; Glimpse down, a state dir that
    cannot be written, or every action failing only once it lasted longer than the patience;
    each verdict says why in one line."""
    verdict = judge(beat, NOW, PATIENCE)
    assert verdict.healthy is healthy
    assert says in verdict.reason
    assert "\n" not in verdict.line and verdict.line.startswith(
        "healthy: " if healthy else "unhealthy: "
    )


# --------------------------------------------------------------------------- the daemon


class FailingAgent:
    """Every slot fails the way a post fails when no image backend answers."""

    def __init__(self) -> None:
        self.ran = 0

    async def startup(self) -> None:
        return None

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        slots = tuple(Slot(f"d/post/{i}", "post", now) for i in (1, 2))
        return [DayPlan(date.today(), slots)], now + timedelta(hours=6)

    async def run_slot(self, slot: Slot) -> object:
        self.ran += 1
        return Outcome("post", False, "image failed: every backend is down")

    async def heartbeat(self) -> None:
        return None


async def test_every_action_failing_is_in_the_heartbeat_and_turns_health_unhealthy(
    tmp_path: Path,
) -> None:
    """Two post slots that both fail: the heartbeat file says since when nothing could be done
    and why, the tallies count them, and the verdict turns once the patience is passed."""
    agent = FailingAgent()
    daemon = Daemon(
        agent,
        clock=SystemClock(),
        heartbeat_file=tmp_path / "heartbeat",
        notifier=SystemdNotifier(""),
        alive_every_seconds=30.0,  # the file must follow the change, not the 30 s turn
    )
    task = asyncio.create_task(daemon.run())
    for _ in range(250):
        beat = read_heartbeat(tmp_path / "heartbeat")
        if agent.ran == 2 and beat is not None and beat.failing_since is not None:
            break
        await asyncio.sleep(0.02)
    daemon.request_stop()
    assert await asyncio.wait_for(task, 10) == 0
    assert beat is not None and beat.failing_since is not None
    assert beat.failure == "post: image failed: every backend is down"
    assert daemon.tallies.actions[("post", "failed")] == 2
    # Judged later, as if the loop had kept writing (its ``at`` fresh) and nothing succeeded.
    soon, late = (beat.failing_since + timedelta(minutes=m) for m in (1, 31))
    assert judge(dataclasses.replace(beat, at=soon), soon, PATIENCE).healthy
    verdict = judge(dataclasses.replace(beat, at=late), late, PATIENCE)
    assert not verdict.healthy and "nothing could be done for 31 min" in verdict.reason


# --------------------------------------------------------------------------- real processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write(tmp: Path, *, patience_minutes: float) -> Path:
    (tmp / "persona.toml").write_text(
        'name = "patient"\ntimezone = "UTC"\nactive_hours = ["00:00", "23:59"]\n'
        'posts_per_day = 1\ntopics = ["lighthouses"]\n',
        encoding="utf-8",
    )
    config = tmp / "agent.toml"
    config.write_text(
        'persona = "persona.toml"\nstate_dir = "state"\n[glimpse]\n'
        f'base_url = "http://127.0.0.1:{_free_port()}/api/v1"\n'
        'api_key = "gk_patient_0123456789abcdef"\ntimeout = 5\n[images]\norder = ["local"]\n'
        '[captions]\norder = ["template"]\n'
        f"[ops]\nunhealthy_after_minutes = {patience_minutes}\n",
        encoding="utf-8",
    )
    return config


def _health(config: Path) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "glimpse_agent", "health", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout)


def test_ready_arrives_while_glimpse_is_down_and_health_turns_after_the_patience(
    tmp_path: Path,
) -> None:
    """Glimpse cannot be reached at all: READY=1 still arrives (the state is sound), STATUS=
    says the daemon waits for Glimpse; `health` says healthy while the wait is shorter than
    [ops] unhealthy_after_minutes and unhealthy ("Glimpse unreachable") once it is longer —
    never earlier; after SIGTERM it says the daemon stopped."""
    patience = timedelta(minutes=0.2)
    config = _write(tmp_path, patience_minutes=0.2)
    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(0.1)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify)}
    env.pop("WATCHDOG_USEC", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "glimpse_agent", "run", "-c", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    messages: list[str] = []

    def drain() -> list[str]:
        while True:
            try:
                messages.append(listener.recv(512).decode())
            except TimeoutError:
                return messages

    try:
        assert wait_until(lambda: "READY=1" in drain(), 30), messages
        assert wait_until(
            lambda: any(m.startswith("STATUS=waiting for Glimpse") for m in drain()), 30
        ), messages
        code, first = _health(config)
        if code == 0:  # the usual case: asked well within the patience
            assert "waiting for Glimpse" in str(first["reason"]), first
        turned: list[dict[str, object]] = []

        def unhealthy() -> bool:
            code, doc = _health(config)
            if code == 1:
                turned.append(doc)
            return code == 1

        assert wait_until(unhealthy, 60), "health never turned unhealthy"
        doc = turned[0]
        assert str(doc["reason"]).startswith("Glimpse unreachable for"), doc
        beat = doc["heartbeat"]
        assert isinstance(beat, dict) and beat["persona"] == "patient"
        down = datetime.fromisoformat(str(beat["glimpse_down_since"]))
        assert datetime.fromisoformat(str(doc["checked_at"])) - down > patience
        assert proc.poll() is None, "the daemon waits for Glimpse, it does not exit"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
        listener.close()
    assert "Traceback" not in err
    code, after = _health(config)
    assert code == 1 and "stopped" in str(after["reason"])
    done = subprocess.run(
        [sys.executable, "-m", "glimpse_agent", "health", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout.startswith("unhealthy: the daemon stopped at")
    assert len(done.stdout.splitlines()) == 1


def test_health_never_exits_2_not_even_on_a_broken_config(tmp_path: Path) -> None:
    """Docker reserves a health check's exit 2: a config that cannot be read is exit 1,
    "unhealthy", saying why."""
    config = tmp_path / "agent.toml"
    config.write_text("persona = 3\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "glimpse_agent", "health", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("unhealthy: cannot read the config:")
    assert "Traceback" not in done.stderr
