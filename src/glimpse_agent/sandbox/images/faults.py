"""Switchable failures for the image-service emulators (Glif, ViewComfy, Hugging Face,
OpenAI images). A test arms faults; each request takes the next one:

    faults.arm("status", status=429, retry_after=2)     # one 429 with Retry-After: 2
    faults.arm("status", status=503, times=2)           # two 503s
    faults.arm("hang", seconds=5)                       # answer nothing for 5 s
    faults.arm("error_200", message="NSFW")             # HTTP 200 (201) carrying an error
    faults.arm("cut")                                   # the connection drops mid-answer
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
from starlette.types import Receive, Scope, Send

# Kinds ``generic_response`` applies for every emulator.
GENERIC_KINDS = frozenset({"status", "hang", "error_200", "cut"})


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


class CutResponse(Response):
    """Headers that promise ``body``, then only its first half, then the connection closes
    (the ASGI app returns without finishing; the server drops the connection). With
    ``chunked=True`` no length is announced and the parts go out as a chunked stream."""

    def __init__(
        self,
        parts: list[bytes],
        *,
        status_code: int = 200,
        media_type: str = "application/json",
        chunked: bool = False,
    ) -> None:
        self.parts = parts
        self.chunked = chunked
        super().__init__(b"", status_code=status_code, media_type=media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", (self.media_type or "").encode("latin-1"))]
        parts = self.parts
        if not self.chunked:
            whole = b"".join(parts)
            headers.append((b"content-length", str(len(whole)).encode("ascii")))
            parts = [whole[: max(1, len(whole) // 2)]]
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        # Return without the final body message: the server closes the connection.


def cut_response(media_type: str = "application/json", status_code: int = 200) -> CutResponse:
    """A success-looking answer that breaks off half-way."""
    body = (
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
        if media_type.startswith("image/")
        else b'{"status": "success", "data": [{"b64_json": "' + b"A" * 2048 + b'"}]}'
    )
    return CutResponse([body], status_code=status_code, media_type=media_type)


async def generic_response(
    fault: Fault | None,
    faults: Faults,
    shape: str = "detail",
    *,
    ok_status: int = 200,
    ok_media_type: str = "application/json",
) -> Response | None:
    """Apply a "status", "hang", "error_200" or "cut" fault: the response to send, or None to
    go on normally. ``shape`` is the error body's shape (see ``error_body``); ``ok_status``
    and ``ok_media_type`` are what the service's success looks like (for "error_200", which
    answers the success status with an error body, and "cut")."""
    if fault is None:
        return None
    if fault.kind == "hang":
        await faults.hang(fault.seconds)
        return None
    if fault.kind == "error_200":
        return JSONResponse(error_body(fault.message, shape), status_code=ok_status)
    if fault.kind == "cut":
        return cut_response(ok_media_type, ok_status)
    if fault.kind == "status":
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(int(fault.retry_after))
        return JSONResponse(
            error_body(fault.message, shape), status_code=fault.status, headers=headers
        )
    return None
