"""Exit codes that stop restart loops, from the real CLI in a subprocess: a state directory this
user may not write is exit 3 naming the path, the uid, the owner and the fix; a key Glimpse
refuses is exit 5 saying so and how to fix it; neither shows a traceback, and in JSON logs the
fatal error is one more JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from glimpse_agent.clock import SystemClock
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer

NOBODY = 65534
KEY = "gk_exitcodes_0123456789abcdef0123"


def _config(folder: Path, base_url: str, *, state_dir: str = "state", key: str = KEY) -> Path:
    (folder / "persona.toml").write_text(
        'name = "exitcodes"\ntimezone = "UTC"\nactive_hours = ["00:00", "23:59"]\n'
        'posts_per_day = 1\ntopics = ["lighthouses"]\n',
        encoding="utf-8",
    )
    agent = folder / "agent.toml"
    agent.write_text(
        f'persona = "persona.toml"\nstate_dir = "{state_dir}"\n[glimpse]\n'
        f'base_url = "{base_url}"\napi_key = "{key}"\ntimeout = 5\n[images]\norder = ["local"]\n'
        '[captions]\norder = ["template"]\n[daemon]\njitter_minutes = 0\n',
        encoding="utf-8",
    )
    return agent


def _as_another_user(argv: list[str]) -> tuple[list[str], int]:
    """``argv`` run as a user that does not own what root made: as root, through setpriv as
    nobody (root may write anything); otherwise as ourselves (the test makes root-like
    ownership by taking the write bit away instead)."""
    if os.geteuid() != 0:
        return argv, os.geteuid()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot run the CLI as another user")
    return [
        setpriv,
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        *argv,
    ], NOBODY


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user may read (pytest's tmp_path is 0700 to root)."""
    folder = Path(tempfile.mkdtemp(prefix="glimpse-exit-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "glimpse_agent", *args]


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _fatal(command: str, stderr: str, code: int) -> str:
    """The fatal message: for `run` (a log stream) the one JSON line saying it, naming the
    persona; for `once` the `glimpse-agent: ...` line, the only text line among the logs."""
    if command == "run":
        fatal = [e for e in _json_lines(stderr) if e["event"] == "fatal"]
        assert len(fatal) == 1 and fatal[0]["exit_code"] == code, stderr
        assert fatal[0]["persona"] == "exitcodes"
        assert all(line.startswith("{") for line in stderr.splitlines()), stderr
        return str(fatal[0]["error"])
    text = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert len(text) == 1 and text[0].startswith("glimpse-agent: "), stderr
    return text[0]


@pytest.mark.parametrize("command", ["run", "once"])
def test_a_state_dir_owned_by_another_user_exits_3_naming_path_uid_owner_and_fix(
    shared_dir: Path, command: str
) -> None:
    """A state dir that exists but belongs to another uid (a bind mount made by root): exit 3
    at once (no waiting, no restart), the message names the directory, the uid we run as,
    its owner, and `chown -R <uid> <dir>`; no traceback; the daemon's is a JSON line."""
    config = _config(shared_dir, "http://127.0.0.1:9/api/v1")
    state = shared_dir / "state"
    state.mkdir(mode=0o700)
    argv, uid = _as_another_user(
        _cli(command, "-c", str(config), *(["--post"] if command == "once" else []))
    )
    if uid == os.geteuid():
        state.chmod(0o500)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    finally:
        state.chmod(0o700)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    message = _fatal(command, done.stderr, 3)
    assert f"cannot write {state}: permission denied for uid {uid}" in message
    assert f"owned by uid {state.stat().st_uid}" in message
    assert f"chown -R {uid} {state}" in message and "state_dir" in message


def test_a_relative_state_dir_in_a_folder_this_user_cannot_write_exits_3(
    shared_dir: Path,
) -> None:
    """The example's relative ``state_dir`` next to a config in a folder only root may write
    (/etc/glimpse-agent, or inside an image): exit 3 saying the directory cannot be created
    in that folder, whose owner it names, and that state_dir resolves against the config's
    folder; `run` never starts (no READY, no traceback)."""
    config = _config(shared_dir, "http://127.0.0.1:9/api/v1", state_dir="state")
    argv, uid = _as_another_user(_cli("run", "-c", str(config)))
    if uid == os.geteuid():
        shared_dir.chmod(0o555)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    finally:
        shared_dir.chmod(0o755)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    message = _fatal("run", done.stderr, 3)
    assert not any(e["event"] == "state_ready" for e in _json_lines(done.stderr))
    assert f"cannot create {shared_dir / 'state'}" in message
    assert f"{shared_dir}, is owned by uid {shared_dir.stat().st_uid}" in message
    assert "relative state_dir resolves against the folder of the config file" in message
    assert not (shared_dir / "state").exists()


@pytest.fixture
def glimpse() -> Iterator[tuple[GlimpseWorld, str]]:
    world = GlimpseWorld(SystemClock(), seed=9, population=3)
    with LoopbackServer(create_glimpse_app(world)) as server:
        yield world, server.url + API_ROOT


@pytest.mark.parametrize("command", ["run", "once"])
def test_a_refused_key_exits_5_saying_so_and_how_to_fix_it(
    tmp_path: Path, glimpse: tuple[GlimpseWorld, str], command: str
) -> None:
    """Glimpse answers 401 to the key: exit 5 (its own code, which systemd's
    RestartPreventExitStatus and Compose's policy honour), the message says the key was
    refused, where it was read from and how to fix it (check the credential file, register
    again); the key itself appears nowhere; no traceback."""
    _, base_url = glimpse
    config = _config(tmp_path, base_url)
    argv = _cli(command, "-c", str(config), *(["--post"] if command == "once" else []))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr
    assert KEY not in done.stderr and KEY not in done.stdout
    message = _fatal(command, done.stderr, 5)
    assert "Glimpse refused the key (HTTP 401" in message
    assert f"api_key (or its api_key_file) in {config}" in message
    assert "glimpse-agent register" in message and "credential" in message.lower()


def test_the_daemon_on_a_terminal_says_its_fatal_error_as_text(
    tmp_path: Path, glimpse: tuple[GlimpseWorld, str]
) -> None:
    """With console logs the daemon's fatal error is the familiar `glimpse-agent: ...` text."""
    _, base_url = glimpse
    config = _config(tmp_path, base_url)
    done = subprocess.run(
        _cli("--log-format", "console", "run", "-c", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 5, done.stderr
    assert "glimpse-agent: Glimpse refused the key" in done.stderr
    assert "Traceback" not in done.stderr and KEY not in done.stderr


def test_the_unit_does_not_restart_on_2_3_or_5() -> None:
    """The systemd unit stops restarting on every exit code that needs a human."""
    unit = Path(__file__).resolve().parents[1] / "systemd" / "glimpse-agent@.service"
    lines = [ln for ln in unit.read_text().splitlines() if ln.startswith("RestartPreventExit")]
    assert lines == ["RestartPreventExitStatus=2 3 5"]
