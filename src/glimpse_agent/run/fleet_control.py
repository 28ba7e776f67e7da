"""How ``glimpse-agent fleet …`` talks to a running fleet: one JSON line each way over a unix
socket that only its owner can open (0600, in a 0700 directory), never a network port.

The socket's path is ``--control PATH``, else ``$GLIMPSE_FLEET_CONTROL``, else
``$RUNTIME_DIRECTORY/fleet.sock`` (systemd's ``RuntimeDirectory=``), else
``$XDG_RUNTIME_DIR/glimpse-agent/fleet.sock``, else ``/tmp/glimpse-agent-<uid>/fleet.sock``:
the daemon and the command work it out the same way, so neither needs the flag on one host
running one fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from glimpse_agent.errors import GlimpseAgentError, StateError
from glimpse_agent.logs import get_logger
from glimpse_agent.redaction import redact

ENV_CONTROL = "GLIMPSE_FLEET_CONTROL"
#: A request or an answer larger than this is refused (an answer lists every persona).
MAX_LINE = 8 * 1024 * 1024
log = get_logger("glimpse_agent.fleet")
Handler = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]


class FleetUnreachable(GlimpseAgentError):
    """No fleet answers on the control socket."""


def default_control_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(ENV_CONTROL):
        return Path(env[ENV_CONTROL]).expanduser()
    if env.get("RUNTIME_DIRECTORY"):
        # systemd may list several, separated by colons: the first is ours.
        return Path(env["RUNTIME_DIRECTORY"].split(":")[0]) / "fleet.sock"
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "glimpse-agent" / "fleet.sock"
    return Path("/tmp") / f"glimpse-agent-{os.getuid()}" / "fleet.sock"


def _private_dir(directory: Path) -> None:
    """``directory`` exists, is ours and nobody else may enter it (a shared /tmp must not let
    another user put a socket of theirs where ours is looked for)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise StateError(f"{directory} belongs to another user; choose another --control path")
    if stat.S_IMODE(info.st_mode) & 0o077 and directory.name.startswith("glimpse-agent"):
        os.chmod(directory, 0o700)


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _claim(path: Path) -> None:
    """Make room for our socket at ``path``, unless a live fleet answers there."""
    _private_dir(path.parent)
    if path.exists() or path.is_symlink():
        if _answers(path):
            raise StateError(
                f"another fleet already answers on {path}; stop it or give this one --control PATH"
            )
        path.unlink()


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    """Listen on ``path`` (0600). A socket left by a fleet that died is replaced; one that a
    running fleet still answers on is not (``StateError``: exit 3, as a locked state dir)."""
    await asyncio.to_thread(_claim, path)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError:
                answer: dict[str, Any] = {"ok": False, "error": "not a JSON object"}
            else:
                try:
                    answer = await handler(request)
                except GlimpseAgentError as exc:
                    answer = {"ok": False, "error": redact(str(exc))}
                except Exception as exc:  # a bug of ours: say so, keep serving
                    log.error(
                        "control_request_failed",
                        command=str(request.get("command"))[:40],
                        error=str(exc),
                        error_type=type(exc).__name__,
                        exc_info=True,
                    )
                    answer = {"ok": False, "error": redact(f"{type(exc).__name__}: {exc}")}
            writer.write(json.dumps(answer, default=str).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass  # the client left, or sent a line too long: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    old = os.umask(0o177)  # the socket is created 0600: no window where others may connect
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path), limit=64 * 1024)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server


def request(path: Path, message: Mapping[str, Any], *, timeout: float = 90.0) -> dict[str, Any]:
    """Send ``message`` to the fleet on ``path`` and return its answer (blocking: the command
    side). ``timeout`` covers a pause, which waits for the persona's action in flight."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise FleetUnreachable(
                f"no fleet answers on {path} ({exc.strerror or exc}); is `glimpse-agent run "
                "--fleet` running, with the same --control?"
            ) from None
        sock.sendall(json.dumps(dict(message)).encode() + b"\n")
        chunks: list[bytes] = []
        size = 0
        try:
            while not chunks or not chunks[-1].endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_LINE:
                    raise FleetUnreachable(f"the fleet on {path} answered more than {MAX_LINE} B")
        except TimeoutError:
            raise FleetUnreachable(
                f"the fleet on {path} did not answer within {timeout:g} s"
            ) from None
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        raise FleetUnreachable(f"the fleet on {path} gave no answer") from None
    if not isinstance(answer, dict):
        raise FleetUnreachable(f"the fleet on {path} gave an answer that is not an object")
    return answer
