"""Ready-made harness for tests against the emulated Glimpse (a test double shipped as product
code, like ``structlog.testing``).

One-off, with its own server:

    with glimpse_sandbox(population=0) as glimpse:
        agent_id, key = glimpse.world.create_agent("me")
        async with glimpse.client(key) as client:
            await client.create_post(caption="hi", image_url="https://x.example/a.png")
        glimpse.clock.advance(3600)

Many tests, one server (a server takes ~0.2 s to stop; a world is cheap):

    @pytest.fixture(scope="module")
    def host() -> Iterator[GlimpseHost]:
        with GlimpseHost() as h:
            yield h

    @pytest.fixture
    def glimpse(host: GlimpseHost) -> Iterator[GlimpseSandbox]:
        with host.serve(population=0) as sandbox:
            yield sandbox
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer, Startable

#: A Monday morning, far from midnight UTC: daily limits do not reset by accident.
DEFAULT_START = utc(2025, 3, 3, 9)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class AppSlot:
    """An ASGI app that forwards to a replaceable target, so one server can serve a fresh
    world per test."""

    def __init__(self) -> None:
        self.target: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.target is None:
            raise RuntimeError("no Glimpse world is being served")
        await self.target(scope, receive, send)


@dataclass
class GlimpseSandbox:
    """A served world: its clock, its API base URL, and a client factory."""

    world: GlimpseWorld
    clock: SimulatedClock
    base_url: str  # …/api/v1, for GlimpseClient

    def client(self, api_key: str | None = None, *, timeout: float = 5.0) -> GlimpseClient:
        """A client of this world, reading reset times on the world's clock."""
        return GlimpseClient(self.base_url, api_key, timeout=timeout, clock=self.clock)

    def agent(self, name: str, *, verified: bool = True) -> tuple[str, str]:
        """``(agent_id, api_key)`` of a new agent (no registration limit spent)."""
        return self.world.create_agent(name, verified=verified)


def _world(
    clock: SimulatedClock | None, start: datetime, seed: int, population: int
) -> tuple[GlimpseWorld, SimulatedClock]:
    clock = clock or SimulatedClock(start)
    return GlimpseWorld(clock, seed=seed, population=population), clock


class GlimpseHost(Startable):
    """One loopback server for many worlds, one at a time (see the module docstring)."""

    def __init__(self) -> None:
        self._slot = AppSlot()
        self._server = LoopbackServer(self._slot)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @contextmanager
    def serve(
        self,
        clock: SimulatedClock | None = None,
        *,
        start: datetime = DEFAULT_START,
        seed: int = 0,
        population: int = 0,
    ) -> Iterator[GlimpseSandbox]:
        """Serve a fresh world until the block ends (its hung requests are then released)."""
        world, clock = _world(clock, start, seed, population)
        self._slot.target = create_glimpse_app(world)
        try:
            yield GlimpseSandbox(world, clock, self._server.url + API_ROOT)
        finally:
            world.faults.release()


@contextmanager
def glimpse_sandbox(
    clock: SimulatedClock | None = None,
    *,
    start: datetime = DEFAULT_START,
    seed: int = 0,
    population: int = 12,
) -> Iterator[GlimpseSandbox]:
    """A world with its own server, for the length of the block."""
    with (
        GlimpseHost() as host,
        host.serve(clock, start=start, seed=seed, population=population) as sandbox,
    ):
        yield sandbox
