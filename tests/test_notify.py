"""sd_notify messages reach a real datagram socket; the heartbeat file round-trips."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from glimpse_agent.clock import utc
from glimpse_agent.notify import (
    Heartbeat,
    SystemdNotifier,
    heartbeat_age_seconds,
    heartbeat_healthy,
    read_heartbeat,
    watchdog_interval_seconds,
    write_heartbeat,
)


def test_notifier_sends_ready_watchdog_stopping(tmp_path: Path) -> None:
    """READY=1, WATCHDOG=1 and STOPPING=1 arrive on $NOTIFY_SOCKET as separate datagrams."""
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        notifier = SystemdNotifier(path)
        assert notifier.ready() and notifier.watchdog() and notifier.stopping()
        got = [server.recv(100).decode() for _ in range(3)]
    assert got == ["READY=1", "WATCHDOG=1", "STOPPING=1"]


def test_notifier_is_silent_without_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside systemd nothing is sent and nothing fails."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    assert not notifier.enabled
    assert notifier.ready() is False


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd's WatchdogSec=60 means a ping every 30 s."""
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_seconds() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval_seconds() is None


def test_heartbeat_file_age(tmp_path: Path) -> None:
    """The heartbeat file tells how long ago the loop was last healthy."""
    path = tmp_path / "heartbeat"
    now = utc(2026, 11, 22, 12)
    assert heartbeat_age_seconds(path, now) is None
    write_heartbeat(path, now)
    assert heartbeat_age_seconds(path, now + timedelta(seconds=90)) == 90.0


def test_the_heartbeat_file_says_state_action_and_health(tmp_path: Path) -> None:
    """The file is JSON with the last healthy time, the state and the running action; it is
    healthy only while fresh and not "stuck"; an older plain-time file still reads."""
    path = tmp_path / "heartbeat"
    now = utc(2026, 11, 22, 12)
    write_heartbeat(path, Heartbeat(now, "running", "d/post/1", now - timedelta(minutes=1)))
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["state"] == "running" and doc["action"] == "d/post/1"
    assert heartbeat_healthy(path, now + timedelta(minutes=5))
    assert not heartbeat_healthy(path, now + timedelta(minutes=11))  # stale
    write_heartbeat(path, Heartbeat(now, "stuck", "d/post/1", now, written_at=now))
    assert not heartbeat_healthy(path, now)
    path.write_text(now.isoformat() + "\n", encoding="utf-8")  # written by an older version
    beat = read_heartbeat(path)
    assert beat is not None and beat.at == now and beat.state == "running"
    path.write_text('{"state": 3}', encoding="utf-8")
    assert read_heartbeat(path) is None and not heartbeat_healthy(path, now)


def test_a_receiver_that_never_reads_costs_messages_not_a_frozen_process(tmp_path: Path) -> None:
    """systemd reads its socket; a receiver that does not (its queue full) must make a send
    fail at once, not block the event loop that sends it."""
    path = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    sent: list[bool] = []
    notifier = SystemdNotifier(str(path))
    worker = threading.Thread(
        target=lambda: sent.extend(notifier.watchdog() for _ in range(5000)), daemon=True
    )
    worker.start()
    worker.join(timeout=30)
    listener.close()
    assert not worker.is_alive(), "a send blocked on a full queue"
    assert sent[0] is True and sent.count(False) > 0  # the queue filled; the rest were dropped
