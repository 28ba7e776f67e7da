"""Switchable failures for the Glimpse emulator. A test arms them; matching requests take them:

    world.faults.fail(503)                           # the next request answers 503
    world.faults.fail(500, times=2, path="/posts")   # the next two requests to .../posts...
    world.faults.hang(2.0, path="/like")             # answer only after 2 s (past a timeout)
    world.faults.garbage(path="/agents/me")          # 200 with an HTML body
    world.faults.refuse(path="/images/generate")     # 400 content_policy_violation
    world.faults.cut(path="/images/generate")        # the answer breaks off half-way
    world.faults.slow_apply(600, path="/posts")      # applied 600 s (loop clock) later
    world.faults.drop(path="/like")                  # applied, then the connection drops
    world.faults.endless(path="/feed")               # headers, then a byte now and then, forever
    world.faults.answer(200, b"[]", path="/feed")    # a canned (hostile) answer instead
    world.faults.mutate(lambda body: {}, path="/me") # the real answer's JSON, rewritten
    world.faults.randomly(0.1, seed=1)               # each request fails with p = 0.1

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

``slow_apply``, ``endless`` and ``randomly`` are for the crash harness and the soaks, where every
process runs on one faked clock (libfaketime): their waits are on the event loop's clock, which
the fake clock speeds up, while ``hang`` waits in real time. ``drop`` does the write and then
closes the connection before a status line is sent. ``randomly`` is consulted only when no armed
fault matches; its draws come from its own seeded generator, so a soak is repeatable.
Armed from the test thread, taken in the server thread: every method takes a lock.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

FaultKind = Literal[
    "status",
    "hang",
    "garbage",
    "refuse",
    "cut",
    "slow_apply",
    "drop",
    "endless",
    "answer",
    "mutate",
]

#: The kinds ``randomly`` draws from by default: every way a network or server fails, but no
#: real-time ``hang`` (it would not follow a faked clock) and no content refusal.
RANDOM_KINDS: tuple[FaultKind, ...] = ("status", "garbage", "cut", "slow_apply", "drop", "endless")
RANDOM_STATUSES = (500, 502, 503, 504)

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
    #: ``answer``: the canned body (bytes, or JSON-able) and headers; ``mutate``: the rewrite.
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    rewrite: Callable[[Any], Any] | None = None

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
        self._random: _RandomFaults | None = None
        self.served = 0
        #: Faults taken, by kind (the random ones too): what a soak reports it went through.
        self.served_by_kind: dict[str, int] = {}

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

    def slow_apply(
        self,
        seconds: float = 600.0,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """The next ``times`` matching requests are applied and answered only after ``seconds``
        of the event loop's clock: longer than the client's timeout, the client gives up and
        the write still appears later."""
        return self._arm(Fault("slow_apply", times, seconds=seconds, path=path, method=method))

    def drop(self, *, times: int = 1, path: str | None = None, method: str | None = None) -> Fault:
        """The next ``times`` matching requests are applied, then their connection closes
        before any answer is sent."""
        return self._arm(Fault("drop", times, path=path, method=method))

    def endless(
        self,
        every: float = 5.0,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """The next ``times`` matching requests get ``200`` JSON headers, then one byte every
        ``every`` seconds (loop clock), never finishing, until the client goes or a release."""
        return self._arm(Fault("endless", times, seconds=every, path=path, method=method))

    def answer(
        self,
        status: int = 200,
        body: Any = b"",
        headers: dict[str, str] | None = None,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """The next ``times`` matching requests get this answer instead (``body``: bytes as
        they are, anything else as JSON), without auth, limits or the handler."""
        fault = Fault("answer", times, status=status, path=path, method=method, body=body)
        fault.headers = dict(headers or {})
        return self._arm(fault)

    def mutate(
        self,
        rewrite: Callable[[Any], Any],
        headers: dict[str, str] | None = None,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """The next ``times`` matching requests are served normally, then their JSON body is
        replaced by ``rewrite(body)`` (bytes as they are, anything else as JSON) and ``headers``
        are set on the answer."""
        fault = Fault("mutate", times, path=path, method=method, rewrite=rewrite)
        fault.headers = dict(headers or {})
        return self._arm(fault)

    def randomly(
        self,
        probability: float,
        *,
        seed: int = 0,
        kinds: tuple[FaultKind, ...] = RANDOM_KINDS,
        slow_seconds: float = 600.0,
        endless_every: float = 5.0,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """From now on each matching request (with no armed fault) fails with ``probability``,
        its kind drawn from ``kinds`` (a ``status`` one from 500/502/503/504). ``0`` stops."""
        with self._lock:
            self._random = (
                _RandomFaults(
                    probability,
                    random.Random(seed),
                    kinds,
                    slow_seconds,
                    endless_every,
                    path,
                    method,
                )
                if probability > 0
                else None
            )

    @property
    def released(self) -> bool:
        return self._released.is_set()

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
                    return self._count(fault)
            if self._random is not None:
                drawn = self._random.draw(method, path)
                if drawn is not None:
                    return self._count(drawn)
        return None

    def _count(self, fault: Fault) -> Fault:
        self.served += 1
        self.served_by_kind[fault.kind] = self.served_by_kind.get(fault.kind, 0) + 1
        return fault

    def release(self) -> None:
        """End every current and future hang at once (call before stopping the server)."""
        self._released.set()

    async def wait(self, seconds: float) -> None:
        """Wait ``seconds`` of real time without blocking the server, waking early once
        released (a thread waits on the event: tests release from their own thread)."""
        await asyncio.to_thread(self._released.wait, seconds)

    async def wait_on_loop(self, seconds: float) -> None:
        """Wait ``seconds`` of the event loop's clock, waking early once released."""
        await wait_on_loop(self, seconds)


@dataclass
class _RandomFaults:
    """The random mode: one seeded draw per matching request."""

    probability: float
    rng: random.Random
    kinds: tuple[FaultKind, ...]
    slow_seconds: float
    endless_every: float
    path: str | None
    method: str | None

    def draw(self, method: str, path: str) -> Fault | None:
        probe = Fault("status", path=self.path, method=self.method)
        if not probe.matches(method, path) or self.rng.random() >= self.probability:
            return None
        kind = self.rng.choice(self.kinds)
        status = self.rng.choice(RANDOM_STATUSES)
        seconds = self.slow_seconds if kind == "slow_apply" else self.endless_every
        return Fault(kind, status=status, seconds=seconds)


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


class DropConnection(Response):
    """No answer at all: the connection closes before a status line. uvicorn's h11 protocol
    refuses a header name with a space before writing a byte, and closes the transport of a
    response that was started but never completed."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"bad header", b"x")]}
            )
        except Exception:  # h11's LocalProtocolError: nothing was written
            return


class Releasable(Protocol):
    """Whatever can end its hangs at once (``GlimpseFaults``, the soaks' ``Chaos``)."""

    @property
    def released(self) -> bool: ...


async def wait_on_loop(faults: Releasable, seconds: float) -> None:
    """Wait ``seconds`` of the event loop's clock (which libfaketime speeds up, unlike a
    thread's timed wait), waking early once ``faults`` are released."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not faults.released:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 5.0))


class Endless(Response):
    """``200`` JSON headers, the start of a list, then one space every ``every`` seconds of the
    loop's clock until the client disconnects or the faults are released."""

    def __init__(self, faults: Releasable, every: float) -> None:
        super().__init__(b"", status_code=200)
        self.faults, self.every = faults, every

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        listener = asyncio.create_task(listen())
        try:
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            chunk = b'{"data": ['
            while not gone.is_set() and not self.faults.released:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = b" "
                await asyncio.sleep(self.every)
        finally:
            listener.cancel()
