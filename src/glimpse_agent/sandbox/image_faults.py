"""Switchable failures for the image-service emulators (Glif, ViewComfy, Hugging Face,
OpenAI images). A test arms faults; each request takes the next one:

    faults.arm("status", status=429, retry_after=2)     # one 429 with Retry-After: 2
    faults.arm("status", status=503, times=2)           # two 503s
    faults.arm("hang", seconds=5)                       # answer nothing for 5 s
    faults.arm("error_200", message="NSFW")             # Glif: HTTP 200 with an error
    faults.arm("cut_stream")                            # ViewComfy: SSE ends early

Faults are read from the server thread while tests arm them: every method takes a lock.
``release()`` wakes any hanging request so a server can stop at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response


@dataclass(frozen=True)
class Fault:
    """One armed failure. ``kind`` is "status", "hang" or an emulator's own kind."""

    kind: str
    status: int = 500
    retry_after: float | None = None
    seconds: float = 30.0
    message: str = "emulated failure"
    extra: dict[str, Any] = field(default_factory=dict)


class Faults:
    """A queue of faults shared by a test (arming) and an emulator (taking)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._always: Fault | None = None
        self._released = threading.Event()

    def arm(self, kind: str, *, times: int = 1, **details: Any) -> Fault:
        """Queue ``times`` copies of a fault for the next requests."""
        fault = Fault(kind, **details)
        with self._lock:
            self._queue.extend([fault] * times)
        return fault

    def always(self, kind: str, **details: Any) -> Fault:
        """Fail every request this way until ``clear()``."""
        fault = Fault(kind, **details)
        with self._lock:
            self._always = fault
        return fault

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._always = None

    def take(self, kinds: frozenset[str] | None = None) -> Fault | None:
        """The next fault (removing a queued one), if its kind is in ``kinds`` (None = any)."""
        with self._lock:
            if self._queue and (kinds is None or self._queue[0].kind in kinds):
                return self._queue.popleft()
            if self._always is not None and (kinds is None or self._always.kind in kinds):
                return self._always
        return None

    def release(self) -> None:
        """End every current and future hang (call before stopping the server)."""
        self._released.set()

    async def hang(self, seconds: float) -> None:
        """Wait ``seconds``, or less once released (the event is set from the test's thread)."""
        await asyncio.to_thread(self._released.wait, seconds)


def error_body(message: str, shape: str) -> dict[str, Any]:
    """An error JSON body in a service's shape: "detail" (FastAPI), "error" (Glif, Hugging
    Face) or "openai" (``{"error": {"message", "type", "code"}}``)."""
    if shape == "openai":
        return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return {shape: message}


async def generic_response(
    fault: Fault | None, faults: Faults, shape: str = "detail"
) -> Response | None:
    """Apply a "status" or "hang" fault: the response to send, or None to go on normally.
    ``shape`` is the error body's shape (see ``error_body``)."""
    if fault is None:
        return None
    if fault.kind == "hang":
        await faults.hang(fault.seconds)
        return None
    if fault.kind == "status":
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(int(fault.retry_after))
        return JSONResponse(
            error_body(fault.message, shape), status_code=fault.status, headers=headers
        )
    return None
