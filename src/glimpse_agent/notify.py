"""systemd readiness/watchdog notifications (sd_notify protocol) and a heartbeat file for
container health checks. No dependency: the protocol is one datagram per message."""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path


class SystemdNotifier:
    """Sends ``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``, ``STATUS=...`` to ``$NOTIFY_SOCKET``.

    Does nothing when the variable is absent (not under systemd, or Type=simple)."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._address: str | None = None
        if address:
            # A leading "@" names a socket in the abstract namespace.
            self._address = "\0" + address[1:] if address.startswith("@") else address

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, message: str) -> bool:
        if self._address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode("utf-8"))
            return True
        except OSError:
            return False

    def ready(self) -> bool:
        return self.notify("READY=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before systemd's start (or stop) timeout fires: sent while
        start-up waits for Glimpse, so ``TimeoutStartSec`` does not kill a patient daemon."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")


def watchdog_interval_seconds() -> float | None:
    """Half of systemd's ``WatchdogSec`` (``$WATCHDOG_USEC``), the recommended ping period."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit():
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1_000_000 / 2


def write_heartbeat(path: Path, now: datetime) -> None:
    """Atomically write the time of the last healthy loop turn (read by HEALTHCHECK)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(now.isoformat() + "\n", encoding="utf-8")
    os.replace(tmp, path)


def heartbeat_age_seconds(path: Path, now: datetime) -> float | None:
    """Seconds since the heartbeat file was written, or None if it is missing/unreadable."""
    try:
        when = datetime.fromisoformat(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return (now - when).total_seconds()
