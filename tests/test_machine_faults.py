"""The real CLI in a subprocess on a damaged ledger, a full disk and a read-only state dir:
the documented exit code and message, JSON where JSON is promised, never a traceback, and a
daemon that waits for the disk instead of ending in "never restart"."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from glimpse_agent.clock import SystemClock
from glimpse_agent.ledger import Ledger
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer
from polling import wait_until

KEY = "gk_machinefaults_0123456789abcdef"

#: Runs the CLI with the state directory's writes refused while ``FLAG`` exists: "enospc"
#: fails every os.replace into it (each atomic write), "erofs" the opening of its lock file.
FAULTY = textwrap.dedent(
    """
    import errno, os, sys
    from pathlib import Path
    flag, kind, state = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    real_replace, real_open = os.replace, os.open
    code = errno.ENOSPC if kind == "enospc" else errno.EROFS
    def refuse(where):
        raise OSError(code, os.strerror(code), str(where))
    def replace(src, dst, *a, **k):
        if flag.exists() and kind == "enospc" and str(dst).startswith(state):
            refuse(dst)
        return real_replace(src, dst, *a, **k)
    def open_(path, flags, *a, **k):
        if flag.exists() and kind == "erofs" and str(path) == state + "/lock":
            refuse(path)
        return real_open(path, flags, *a, **k)
    os.replace, os.open = replace, open_
    from glimpse_agent.cli import main
    sys.exit(main(sys.argv[4:]))
    """
)


def _config(tmp: Path, base_url: str = "http://127.0.0.1:9/api/v1") -> Path:
    (tmp / "persona.toml").write_text(
        'name = "faults"\ntimezone = "UTC"\nactive_hours = ["00:00", "23:59"]\n'
        'posts_per_day = 1\ntopics = ["lighthouses"]\n',
        encoding="utf-8",
    )
    agent = tmp / "agent.toml"
    agent.write_text(
        f'persona = "persona.toml"\nstate_dir = "state"\n[glimpse]\nbase_url = "{base_url}"\n'
        f'api_key = "{KEY}"\ntimeout = 5\n[images]\norder = ["local"]\n'
        '[captions]\norder = ["template"]\n[daemon]\njitter_minutes = 0\n',
        encoding="utf-8",
    )
    return agent


def _faulty(tmp: Path, kind: str, *argv: str) -> list[str]:
    script = tmp / "faulty.py"
    script.write_text(FAULTY, encoding="utf-8")
    return [sys.executable, str(script), str(tmp / "fault-on"), kind, str(tmp / "state"), *argv]


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_status_json_on_a_damaged_ledger_is_json_and_the_warning_goes_to_stderr(
    tmp_path: Path,
) -> None:
    """A ledger damaged into valid JSON of the wrong shape: `status --json` still prints one
    JSON document on stdout (read from .bak); the recovery warning is a JSON line on stderr."""
    config = _config(tmp_path)
    state = tmp_path / "state"
    with Ledger.open(state, clock=SystemClock()) as ledger:
        ledger.record_error("test", "first", datetime.now(UTC))
        ledger.record_error("test", "second", datetime.now(UTC))
    (state / "ledger.json").write_text('{"errors": "not a table"}', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "glimpse_agent", "status", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["persona"] == "faults"
    assert [e["message"] for e in view["last_errors"]] == ["first"]  # the .bak's content
    warnings = _json_lines(done.stderr)
    assert [w["event"] for w in warnings] == ["state_file_unreadable_using_backup"]
    assert "Traceback" not in done.stderr and KEY not in done.stderr + done.stdout


def test_status_json_failure_is_still_json_on_stdout(tmp_path: Path) -> None:
    """A ledger damaged with no good backup: exit 3, the reason on stderr, and on stdout a
    JSON object saying so (never nothing, never text)."""
    config = _config(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "ledger.json").write_text("[", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "glimpse_agent", "status", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert json.loads(done.stdout)["exit_code"] == 3
    assert "unreadable" in done.stderr and "Traceback" not in done.stderr


def test_a_one_shot_command_on_a_full_disk_exits_4_without_a_traceback(tmp_path: Path) -> None:
    """`once --post` when the state directory's disk is full: exit 4 (may pass; systemd
    restarts on it), the reason in one line, no traceback."""
    config = _config(tmp_path)
    (tmp_path / "fault-on").touch()
    done = subprocess.run(
        _faulty(tmp_path, "enospc", "once", "-c", str(config), "--post"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 4, done.stderr
    assert "No space left on device" in done.stderr and "disk full" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def glimpse() -> Iterator[tuple[GlimpseWorld, str]]:
    world = GlimpseWorld(SystemClock(), seed=5, population=4)
    with LoopbackServer(create_glimpse_app(world)) as server:
        yield world, server.url + API_ROOT
        world.faults.release()


@pytest.mark.parametrize("kind", ["enospc", "erofs"])
def test_run_waits_for_a_full_or_read_only_state_dir_then_starts(
    tmp_path: Path, glimpse: tuple[GlimpseWorld, str], kind: str
) -> None:
    """A restart while the disk is full (or the state dir read-only): `run` stays up, says
    why in JSON and in STATUS= to systemd, retries, and starts once the fault is gone; the
    heartbeat file's failure every turn is logged once (rate-limited), never a traceback."""
    world, base_url = glimpse
    world_key = world.create_agent("faults")[1]
    config = _config(tmp_path, base_url)
    config.write_text(config.read_text().replace(KEY, world_key), encoding="utf-8")
    if kind == "enospc":  # a ledger from before the disk filled up
        with Ledger.open(tmp_path / "state", clock=SystemClock()) as ledger:
            ledger.record_error("test", "before", datetime.now(UTC))
    (tmp_path / "fault-on").touch()
    notify = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    listener.settimeout(0.1)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "200000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        _faulty(tmp_path, kind, "run", "-c", str(config)),
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
        assert wait_until(lambda: any("waiting for the state directory" in m for m in drain()), 30)
        time.sleep(1.0)  # ten turns of the alive loop, each failing to write the heartbeat
        assert proc.poll() is None, "run exited instead of waiting for the disk"
        assert "READY=1" not in drain()
        (tmp_path / "fault-on").unlink()
        assert wait_until(lambda: "READY=1" in drain(), 30), "no start once the disk is back"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
        listener.close()
    assert code == 0, err
    assert "Traceback" not in err
    events = _json_lines(err)
    names = [e["event"] for e in events]
    retry = next(e for e in events if e["event"] == "startup_retry")
    assert retry["waiting_for"] == "the state directory"
    assert retry["error_type"] == "StateUnwritable"
    # READY=1 (logged as state_ready) comes once the state dir takes writes again.
    assert names.index("startup_retry") < names.index("state_ready")
    if kind == "enospc":
        assert names.count("heartbeat_file_failed") == 1, names
