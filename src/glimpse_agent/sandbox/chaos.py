"""Random faults in front of any emulator: an ASGI middleware for the soaks, so that the image
and caption services fail in every way the Glimpse emulator's own ``randomly`` mode does.

    app = Chaos(create_glif_app(state), probability=0.1, seed=2, service="glif")

Each HTTP request fails with ``probability``, its kind drawn from ``kinds``:

- ``status``: 500/502/503/504 with a JSON error body, the app never reached;
- ``throttle``: 429 with ``Retry-After`` (one of ``retry_after``, up to two hours: longer than
  the gap between two posts), the app never reached; a later request that arrives before that
  time has passed counts as a Retry-After violation (``violations``);
- ``garbage``: 200 with an HTML page;
- ``cut``: the app runs (its work is done), then only half its answer is sent;
- ``drop``: the app runs, then the connection closes before a status line (applied, answer
  lost);
- ``slow_apply``: the app runs only after ``slow_seconds`` of the loop's clock, past a client's
  timeout;
- ``endless``: 200 headers, then a space every ``endless_every`` seconds, never an end.

Waits are on the event loop's clock, which libfaketime speeds up in the soaks. Draws come from a
seeded generator, so a soak is repeatable. The counters are read from the soak's thread while the
server's thread writes them: every update takes a lock.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import MutableMapping, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glimpse_agent.sandbox.glimpse.faults import DropConnection, Endless, wait_on_loop

CHAOS_KINDS: tuple[str, ...] = (
    "status",
    "throttle",
    "garbage",
    "cut",
    "drop",
    "slow_apply",
    "endless",
)
STATUSES = (500, 502, 503, 504)


class Chaos:
    """``app`` behind a seeded random fault on a share of its requests."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        probability: float,
        seed: int = 0,
        service: str = "service",
        kinds: tuple[str, ...] = CHAOS_KINDS,
        retry_after: tuple[float, ...] = (60.0, 600.0, 3600.0, 7200.0),
        slow_seconds: float = 600.0,
        endless_every: float = 5.0,
    ) -> None:
        unknown = set(kinds) - set(CHAOS_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self.app = app
        self.probability = probability
        self.service = service
        self.kinds = kinds
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.endless_every = endless_every
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._blocked_until = 0.0  # wall clock (the faked one in a soak)
        self.requests = 0
        self.served_by_kind: dict[str, int] = {}
        self.violations = 0

    def release(self) -> None:
        """End every endless answer and slow apply at once (call before stopping)."""
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def stop_faults(self) -> None:
        with self._lock:
            self.probability = 0.0

    def figures(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "faults_served": dict(self.served_by_kind),
                "retry_after_violations": self.violations,
            }

    def _draw(self) -> tuple[str, float] | None:
        """The fault for this request (its kind and, for a throttle, its Retry-After)."""
        with self._lock:
            self.requests += 1
            if time.time() < self._blocked_until:
                self.violations += 1
            if self.probability <= 0 or self._rng.random() >= self.probability:
                return None
            kind = self._rng.choice(self.kinds)
            wait = self._rng.choice(self.retry_after)
            self.served_by_kind[kind] = self.served_by_kind.get(kind, 0) + 1
            if kind == "throttle":
                self._blocked_until = max(self._blocked_until, time.time() + wait)
            return kind, wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        drawn = self._draw()
        if drawn is None:
            await self.app(scope, receive, send)
            return
        kind, wait = drawn
        if kind == "status":
            status = self._rng.choice(STATUSES)
            await _json(send, status, {"error": f"emulated {status}", "detail": "chaos"})
        elif kind == "throttle":
            headers = [(b"retry-after", str(int(wait)).encode("ascii"))]
            await _json(send, 429, {"error": "rate limited", "detail": "chaos"}, headers)
        elif kind == "garbage":
            page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
            await _start(send, 200, [(b"content-type", b"text/html")], len(page))
            await send({"type": "http.response.body", "body": page})
        elif kind == "slow_apply":
            await wait_on_loop(self, self.slow_seconds)
            await self.app(scope, receive, _Ignoring(send))
        elif kind == "endless":
            await Endless(self, self.endless_every)(scope, receive, send)
        else:  # "cut" and "drop": the app does its work, the answer is lost on the way
            captured = _Captured()
            await self.app(scope, receive, captured)
            if kind == "cut":
                await captured.cut(send)
            else:
                await DropConnection()(scope, receive, send)


class _Captured:
    """A ``send`` that keeps the app's answer instead of sending it."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    async def cut(self, send: Send) -> None:
        """The answer's status and headers (minus any length), then half its body, then the
        app returns without finishing: the server drops the connection."""
        if self.start is None:
            return
        headers = [
            (k, v) for k, v in self.start.get("headers", []) if k.lower() != b"content-length"
        ]
        await send({**self.start, "headers": headers})
        half = bytes(self.body[: max(1, len(self.body) // 2)])
        await send({"type": "http.response.body", "body": half, "more_body": True})


class _Ignoring:
    """A ``send`` for an answer nobody waits for any more (the client timed out): messages go
    out while the connection lasts and are dropped after."""

    def __init__(self, send: Send) -> None:
        self._send = send

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        try:
            await self._send(message)
        except Exception:  # the client is gone: the work was done, the answer has no reader
            return


async def _start(
    send: Send, status: int, headers: Sequence[tuple[bytes, bytes]], length: int | None
) -> None:
    sent = list(headers)
    if length is not None:
        sent.append((b"content-length", str(length).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": sent})


async def _json(
    send: Send, status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    data = json.dumps(body).encode("utf-8")
    await _start(send, status, [(b"content-type", b"application/json"), *headers], len(data))
    await send({"type": "http.response.body", "body": data})
