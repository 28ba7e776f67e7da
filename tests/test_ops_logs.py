"""Logs journald and Docker understand: every line of the daemon names the persona, one
start-up line says version, config and enabled backends, and under systemd (``$JOURNAL_STREAM``
naming our stderr) each line starts with its syslog priority so `journalctl -p warning` works."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from glimpse_agent import __version__
from glimpse_agent.clock import SystemClock
from glimpse_agent.logs import configure_logging, get_logger, journal_stream_matches
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer
from polling import wait_until

PREFIX = re.compile(r"^<([0-7])>(\{.*\})$")
PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}


@pytest.fixture
def world() -> Iterator[tuple[GlimpseWorld, str]]:
    world = GlimpseWorld(SystemClock(), seed=8, population=4)
    with LoopbackServer(create_glimpse_app(world)) as server:
        yield world, server.url + API_ROOT
        world.faults.release()


def _config(tmp: Path, base_url: str) -> Path:
    (tmp / "persona.toml").write_text(
        'name = "chatty"\ntimezone = "UTC"\nactive_hours = ["00:00", "23:59"]\n'
        'posts_per_day = 2\ntopics = ["lighthouses"]\n[engagement]\nsessions_per_day = 8\n',
        encoding="utf-8",
    )
    config = tmp / "agent.toml"
    config.write_text(
        f'persona = "persona.toml"\nstate_dir = "state"\n[glimpse]\nbase_url = "{base_url}"\n'
        'api_key = "${LOGS_TEST_KEY}"\ntimeout = 5\n[images]\norder = ["local"]\n'
        '[images.local]\nwidth = 128\nheight = 128\n[captions]\norder = ["template"]\n'
        "[daemon]\njitter_minutes = 0\nmisfire_grace_minutes = 240\n",
        encoding="utf-8",
    )
    return config


def test_under_journald_every_line_has_its_priority_and_names_the_persona(
    tmp_path: Path, world: tuple[GlimpseWorld, str]
) -> None:
    """`run` with stderr on a file that $JOURNAL_STREAM names (as systemd sets it): every line
    is `<N>` + one JSON object, N the syslog priority of its level (a warning is <4>); every
    object carries the persona (day_planned, state_ready, daemon_ready, startup_retry and
    stop_requested included); one `starting` line gives version, config and backends; the key
    appears nowhere."""
    glimpse, base_url = world
    _, key = glimpse.create_agent("chatty")
    config = _config(tmp_path, base_url)
    # Glimpse answers 503 to the first start-up: a startup_retry warning, then it works.
    glimpse.faults.answer(503, {"error": "down"}, path="/agents/me", times=1)
    log_file = tmp_path / "stderr.log"
    with log_file.open("w") as stderr:
        st = os.fstat(stderr.fileno())
        env = {
            **os.environ,
            "LOGS_TEST_KEY": key,
            "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
        }
        env.pop("NOTIFY_SOCKET", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "glimpse_agent", "run", "-c", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        try:
            assert wait_until(lambda: '"daemon_ready"' in log_file.read_text(), 60)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = log_file.read_text().splitlines()
    events = []
    for line in lines:
        match = PREFIX.match(line)
        assert match, f"not <N>{{json}}: {line[:200]}"
        event = json.loads(match.group(2))
        assert int(match.group(1)) == PRIORITY[event["level"]], line[:200]
        assert event.get("persona") == "chatty", line[:200]
        events.append(event)
    assert key not in log_file.read_text()
    names = [e["event"] for e in events]
    for name in (
        "starting",
        "state_ready",
        "startup_retry",
        "day_planned",
        "daemon_ready",
        "stop_requested",
    ):
        assert name in names, names
    assert names[-1] == "daemon_stopped", names
    retry = next(e for e in events if e["event"] == "startup_retry")
    assert retry["level"] == "warning" and lines[names.index("startup_retry")].startswith("<4>")
    start = [e for e in events if e["event"] == "starting"]
    assert len(start) == 1 and names[0] == "starting"
    assert start[0]["version"] == __version__ and start[0]["config"] == str(config.resolve())
    assert start[0]["image_backends"] == ["local"] and start[0]["caption_sources"] == ["template"]


def test_without_a_matching_journal_stream_lines_are_plain_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$JOURNAL_STREAM set, but stderr redirected elsewhere (not the journal's stream): no
    prefix, so a file or a pipe gets clean JSON lines (sd-daemon(3)'s rule)."""
    with (tmp_path / "a").open("w") as journal, (tmp_path / "b").open("w") as other:
        st = os.fstat(journal.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert journal_stream_matches(journal) and not journal_stream_matches(other)
        assert not journal_stream_matches(io.StringIO())
        try:
            configure_logging("info", json=True, stream=other)
            get_logger("test", persona="p").warning("careful")
            configure_logging("info", json=True, stream=journal)
            get_logger("test", persona="p").warning("careful", n=2)
        finally:
            configure_logging("info", json=True, stream=sys.stderr)
    assert (tmp_path / "b").read_text().startswith('{"persona": "p"')
    assert (tmp_path / "a").read_text().startswith('<4>{"persona": "p"')
