"""Switchable failures for the Glimpse emulator. A test arms them; matching requests take them:

    world.faults.fail(503)                           # the next request answers 503
    world.faults.fail(500, times=2, path="/posts")   # the next two requests to .../posts...
    world.faults.hang(2.0, path="/like")             # answer only after 2 s (past a timeout)
    world.faults.garbage(path="/agents/me")          # 200 with an HTML body
    world.faults.refuse(path="/images/generate")     # 400 content_policy_violation
    world.faults.cut(path="/images/generate")        # the answer breaks off half-way

``path`` matches as a substring of the URL path, ``method`` exactly; a matching request takes
the fault whatever happens to it next. A hung request is then served normally (the write
happens even though the client gave up, as on a real server).

``refuse`` stands for the service's own refusal of the content (a safety system): it answers
after auth, the rate limit and the body's parsing, instead of the handler, in the documented
error format. Whether the real Glimpse counts a refused prompt against the day's six
generations is not documented; we assume it does not (no image was made, and the emulator
counts a limited call only when it succeeds), and ``counted=True`` emulates a service that does.

``cut`` serves the request normally (every check, the write, the limit spent on success), then
sends the status and headers of the real answer, its ``Content-Length`` too, and only half the
body before the connection closes: the client cannot tell whether the work was done.
Armed from the test thread, taken in the server thread: every method takes a lock.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Literal

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

FaultKind = Literal["status", "hang", "garbage", "refuse", "cut"]

#: What ``refuse`` answers unless told otherwise (the wording image providers use).
REFUSAL_CODE = "content_policy_violation"
REFUSAL_MESSAGE = "Prompt rejected by safety system"


@dataclass
class Fault:
    """One armed failure, good for ``times`` more matching requests."""

    kind: FaultKind
    times: int = 1
    status: int = 503
    seconds: float = 5.0
    path: str | None = None
    method: str | None = None
    code: str = REFUSAL_CODE
    message: str = REFUSAL_MESSAGE
    counted: bool = False  # a refusal spends a slot of the endpoint's rate-limit bucket

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path is None or self.path in path
        )


class GlimpseFaults:
    """The queue of armed faults, first armed first taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []
        self._released = threading.Event()
        self.served = 0

    def fail(
        self,
        status: int = 503,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """The next ``times`` matching requests answer ``status`` with an error body."""
        return self._arm(Fault("status", times, status=status, path=path, method=method))

    def hang(
        self,
        seconds: float = 5.0,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """The next ``times`` matching requests wait ``seconds`` (real time) before answering."""
        return self._arm(Fault("hang", times, seconds=seconds, path=path, method=method))

    def garbage(
        self, *, times: int = 1, path: str | None = None, method: str | None = None
    ) -> Fault:
        """The next ``times`` matching requests answer 200 with a body that is not JSON."""
        return self._arm(Fault("garbage", times, path=path, method=method))

    def refuse(
        self,
        code: str = REFUSAL_CODE,
        message: str = REFUSAL_MESSAGE,
        *,
        status: int = 400,
        counted: bool = False,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """The next ``times`` matching requests are refused for their content: ``status``
        with ``{"error": {"code", "message", "status"}}``, once auth and limits passed.
        Nothing is written; the limit is spent only if ``counted``."""
        fault = Fault(
            "refuse",
            times,
            status=status,
            path=path,
            method=method,
            code=code,
            message=message,
            counted=counted,
        )
        return self._arm(fault)

    def cut(self, *, times: int = 1, path: str | None = None, method: str | None = None) -> Fault:
        """The next ``times`` matching requests are served, but their answer stops half-way
        through the body its ``Content-Length`` announced, and the connection closes."""
        return self._arm(Fault("cut", times, path=path, method=method))

    def _arm(self, fault: Fault) -> Fault:
        with self._lock:
            self._armed.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(f.times for f in self._armed)

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching this request, spending one of its ``times``."""
        with self._lock:
            for fault in self._armed:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._armed.remove(fault)
                    self.served += 1
                    return fault
        return None

    def release(self) -> None:
        """End every current and future hang at once (call before stopping the server)."""
        self._released.set()

    async def wait(self, seconds: float) -> None:
        """Wait ``seconds`` of real time without blocking the server, waking early once
        released (a thread waits on the event: tests release from their own thread)."""
        await asyncio.to_thread(self._released.wait, seconds)


class CutOff(Response):
    """``whole``'s status and headers (its ``Content-Length`` too), then the first half of its
    body, then the app returns without finishing: the server drops the connection. The same
    trick as ``image_faults.CutResponse``, keeping the answer's own headers (the
    ``X-RateLimit-*`` ones among them)."""

    def __init__(self, whole: Response) -> None:
        super().__init__(b"", status_code=whole.status_code)
        self.whole = whole

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytes(self.whole.body)
        await send(
            {
                "type": "http.response.start",
                "status": self.whole.status_code,
                "headers": self.whole.raw_headers,
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": body[: max(1, len(body) // 2)],
                "more_body": True,
            }
        )
        # Return without the final body message: the server closes the connection.
