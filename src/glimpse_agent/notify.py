"""systemd readiness/watchdog notifications (sd_notify protocol) and a heartbeat file for
container health checks. No dependency: the protocol is one datagram per message.

The heartbeat file is one JSON object: when the loop was last seen making progress, its state
("starting", "running", "stopping", "stopped", or "stuck": an action past its deadline), and
the action running and since when; then what the daemon saw of the world (since when Glimpse
has been unreachable, since when every action has failed, what start-up waits for), which
``glimpse_agent.health`` judges for ``glimpse-agent health``. ``heartbeat_healthy`` is the
loop-only check (stuck or stale) of older health checks."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


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
                # Sent from the event loop: a receiver whose queue is full (not reading) must
                # cost us one lost message, never a frozen process.
                sock.setblocking(False)
                sock.connect(self._address)
                sock.send(message.encode("utf-8"))
            return True
        except OSError:  # BlockingIOError included
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


#: Heartbeat states: the loop is making progress ("starting": before the first plan).
HEALTHY_STATES = frozenset({"starting", "running", "stopping"})
#: A heartbeat older than this is stale: the loop that writes it every 30 s has stopped.
HEARTBEAT_MAX_AGE_SECONDS = 600.0


@dataclass(frozen=True)
class Heartbeat:
    """What the heartbeat file says. ``at`` is the last moment the loop was seen making
    progress; it stops advancing while ``state`` is "stuck" (an action running past its
    deadline and grace), though the file is still rewritten to say so.

    The rest is what the daemon saw, for the health verdict: ``glimpse_ok_at`` (Glimpse last
    answered), ``glimpse_down_since`` (the first failure since it last answered, None while it
    answers) and ``glimpse_error``; ``done_at`` (an action last did its work),
    ``failing_since`` (the first failed action since then) and ``failure``; ``waiting_for``
    ("Glimpse", "the state directory") and ``waiting_since`` while start-up waits."""

    at: datetime
    state: str = "running"
    action: str | None = None
    action_since: datetime | None = None
    written_at: datetime | None = None
    persona: str | None = None
    pid: int | None = None
    glimpse_ok_at: datetime | None = None
    glimpse_down_since: datetime | None = None
    glimpse_error: str | None = None
    done_at: datetime | None = None
    failing_since: datetime | None = None
    failure: str | None = None
    waiting_for: str | None = None
    waiting_since: datetime | None = None

    def to_json(self) -> str:
        doc: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            doc[f.name] = value.isoformat() if isinstance(value, datetime) else value
        doc["written_at"] = (self.written_at or self.at).isoformat()
        return json.dumps(doc) + "\n"

    def healthy(self, now: datetime, max_age_seconds: float = HEARTBEAT_MAX_AGE_SECONDS) -> bool:
        return self.state in HEALTHY_STATES and (now - self.at).total_seconds() < max_age_seconds


def write_heartbeat(path: Path, now: datetime | Heartbeat) -> None:
    """Atomically write the heartbeat (read by HEALTHCHECK); a bare time means "running"."""
    beat = now if isinstance(now, Heartbeat) else Heartbeat(now)
    # A name of this writer's own: two threads writing at once must not take each other's.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(beat.to_json(), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_heartbeat(path: Path) -> Heartbeat | None:
    """The heartbeat file, or None if it is missing or unreadable. A file from an older version
    (one ISO time) reads as "running" at that time; fields it lacks read as None."""
    try:
        text = path.read_text(encoding="utf-8").strip()
        if not text.startswith("{"):
            return Heartbeat(_aware(datetime.fromisoformat(text)))
        doc = json.loads(text)
        values: dict[str, Any] = {"at": _aware(datetime.fromisoformat(doc["at"]))}
        values["state"] = str(doc.get("state") or "running")
        for f in fields(Heartbeat):
            raw = doc.get(f.name)
            if f.name in values or raw is None:
                continue
            if f.name in _TIMES:
                values[f.name] = _aware(datetime.fromisoformat(raw))
            elif f.name == "pid":
                values[f.name] = int(raw)
            else:
                values[f.name] = str(raw)
        return Heartbeat(**values)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


_TIMES = frozenset(
    {
        "action_since",
        "written_at",
        "glimpse_ok_at",
        "glimpse_down_since",
        "done_at",
        "failing_since",
        "waiting_since",
    }
)


def heartbeat_age_seconds(path: Path, now: datetime) -> float | None:
    """Seconds since the loop was last seen making progress, or None if the file is
    missing/unreadable."""
    beat = read_heartbeat(path)
    return None if beat is None else (now - beat.at).total_seconds()


def heartbeat_healthy(
    path: Path | str,
    now: datetime | None = None,
    max_age_seconds: float = HEARTBEAT_MAX_AGE_SECONDS,
) -> bool:
    """The container health check: the file is fresh and says the loop makes progress."""
    beat = read_heartbeat(Path(path))
    return beat is not None and beat.healthy(now or datetime.now(UTC), max_age_seconds)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
