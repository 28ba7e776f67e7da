"""`glimpse-agent run --fleet DIR` as a real process against the Glimpse emulator: three
personas post, a fourth file added is picked up on SIGHUP, one persona is paused and resumed,
and SIGTERM stops them all; every step shows in `fleet status` and in the logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetkit import write_member
from glimpse_agent.clock import SystemClock
from glimpse_agent.notify import heartbeat_healthy
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer
from polling import wait_until


@pytest.fixture
def world() -> Iterator[tuple[GlimpseWorld, str]]:
    world = GlimpseWorld(SystemClock(), seed=5, population=6)
    with LoopbackServer(create_glimpse_app(world)) as server:
        yield world, server.url + API_ROOT
        world.faults.release()


_RUN = (sys.executable, "-m", "glimpse_agent", "run")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glimpse_agent", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _status(control: Path) -> dict[str, dict[str, Any]]:
    done = _cli("fleet", "status", "--json", "--control", str(control))
    if done.returncode != 0:
        return {"error": {"state": done.stdout + done.stderr}}
    return {row["persona"]: row for row in json.loads(done.stdout)["personas"]}


def _states(control: Path) -> dict[str, str]:
    return {name: row["state"] for name, row in _status(control).items()}


def _events(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_fleet_reload_pause_resume_and_stop(
    tmp_path: Path, world: tuple[GlimpseWorld, str]
) -> None:
    glimpse, base_url = world
    fleet_dir = tmp_path / "fleet.d"
    agents: dict[str, tuple[str, str]] = {}
    for name in ("ada", "bob", "cyd", "dia"):
        agents[name] = glimpse.create_agent(name)
    for name in ("ada", "bob", "cyd"):
        write_member(tmp_path, name, base_url=base_url, key=agents[name][1], fleet_dir=fleet_dir)
    control = tmp_path / "ctl" / "fleet.sock"
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(0.1)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "2000000"}
    env.pop("WATCHDOG_PID", None)
    err_path = tmp_path / "fleet.err"
    with err_path.open("w") as err_file:
        proc = subprocess.Popen(
            [*_RUN, "--fleet", str(fleet_dir), "--control", str(control)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
            text=True,
        )
    messages: list[str] = []
    listening = threading.Event()
    listening.set()

    def drain() -> None:
        # Read as systemd does, all along: a full datagram queue would block the sender.
        while listening.is_set():
            try:
                messages.append(listener.recv(256).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    def posts(name: str) -> int:
        return len(glimpse.posts_by(agents[name][0]))

    try:
        # Three personas start and post their due slot, each as its own account.
        assert wait_until(
            lambda: _states(control) == dict.fromkeys(("ada", "bob", "cyd"), "running"), 60
        ), _status(control)
        assert wait_until(lambda: all(posts(n) == 1 for n in ("ada", "bob", "cyd")), 60)
        assert stat.S_IMODE(control.stat().st_mode) == 0o600
        assert stat.S_IMODE(control.parent.stat().st_mode) == 0o700
        assert heartbeat_healthy(control.parent / "heartbeat")
        rows = _status(control)
        assert rows["ada"]["quotas_left"]["posts"] is not None
        human = _cli("fleet", "status", "--control", str(control))
        assert human.returncode == 0 and "ada" in human.stdout and "running" in human.stdout

        # A fourth file, then SIGHUP: it starts; the other three are not restarted.
        write_member(tmp_path, "dia", base_url=base_url, key=agents["dia"][1], fleet_dir=fleet_dir)
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: _states(control).get("dia") == "running", 60), _status(control)
        assert wait_until(lambda: posts("dia") == 1, 60)

        # Pause one: it says so; resume: it runs again and does not post its done slot twice.
        paused = _cli("fleet", "pause", "bob", "--control", str(control))
        assert paused.returncode == 0, paused.stderr
        assert _states(control)["bob"] == "paused"
        assert (tmp_path / "bob" / "state" / "fleet-paused").is_file()
        assert {s for n, s in _states(control).items() if n != "bob"} == {"running"}
        resumed = _cli("fleet", "resume", "bob", "--control", str(control))
        assert resumed.returncode == 0, resumed.stderr
        assert wait_until(lambda: _states(control).get("bob") == "running", 60), (
            _status(control),
            err_path.read_text()[-4000:],
        )
        assert not (tmp_path / "bob" / "state" / "fleet-paused").exists()
        unknown = _cli("fleet", "pause", "nobody", "--control", str(control))
        assert unknown.returncode == 1 and "no persona named 'nobody'" in unknown.stderr

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listening.clear()
        reader.join(timeout=5)
        listener.close()
    err = err_path.read_text()
    assert code == 0, err[-3000:]
    assert "Traceback" not in err
    assert all(key not in err for _, key in agents.values())
    assert "READY=1" in messages and "WATCHDOG=1" in messages
    assert messages[-1] == "STOPPING=1", messages
    assert {n: posts(n) for n in agents} == dict.fromkeys(agents, 1), "one post each, no duplicate"
    events = _events(err)
    by_persona = {(e.get("persona"), e["event"]) for e in events}
    for name in agents:
        assert (name, "daemon_ready") in by_persona and (name, "posted") in by_persona
        assert (name, "daemon_stopped") in by_persona
    assert ("bob", "persona_paused") in by_persona and ("bob", "persona_resumed") in by_persona
    reloads = [e for e in events if e["event"] == "fleet_reloaded"]
    assert reloads and reloads[0]["added"] == ["dia"] and reloads[0]["unchanged"] == 3
    assert [e["event"] for e in events][-1] == "fleet_stopped"
    assert not control.exists(), "the control socket is removed at exit"
