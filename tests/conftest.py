"""Fixtures every test module may use: a clean secret registry and logging per test, and the
emulators on loopback. A module that needs something else defines a fixture of the same name.

Emulators, by what they serve:

- ``serve`` / ``serve_module``: start any app, stopped after the test / the module.
- ``host`` and ``glimpse``: one Glimpse server per module, a fresh world per test.
- ``glif_server``, ``vc_server``, ``hf_server``, ``oa_server``: one image emulator per module,
  as ``(app, url)``; a module gives each test a fresh state on it.
- ``base_url``: the Langflow emulator serving the module's ``state`` (a ``LangflowState``).
- ``chat``: the OpenAI chat emulator serving the module's ``chat_state``, as ``(state, v1 url)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette

from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.redaction import forget_all_secrets
from glimpse_agent.run.fleet import Fleet
from glimpse_agent.sandbox.glimpse.testing import GlimpseHost, GlimpseSandbox
from glimpse_agent.sandbox.images.glif import create_glif_app
from glimpse_agent.sandbox.images.huggingface import create_hf_app
from glimpse_agent.sandbox.images.openai import create_openai_images_app
from glimpse_agent.sandbox.images.viewcomfy import create_viewcomfy_app
from glimpse_agent.sandbox.langflow.app import LangflowState, create_langflow_app
from glimpse_agent.sandbox.openai_chat import ChatState, create_openai_chat_app
from glimpse_agent.sandbox.server import LoopbackServer

#: ``url = serve(app)``: the app is served on loopback until the fixture's scope ends.
Serve = Callable[[Any], str]


@pytest.fixture(autouse=True)
def _fresh_secret_registry() -> Iterator[None]:
    """Each test starts with no registered secrets, so redaction tests cannot pass by accident."""
    forget_all_secrets()
    yield
    forget_all_secrets()


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI tests configure logging onto pytest's capture stream, which closes after the test:
    put structlog and the root logger back so later tests never write to a closed stream."""
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "stream", None) is not None and not isinstance(
            handler, logging.NullHandler
        ):
            root.removeHandler(handler)


@pytest.fixture
def clock() -> SimulatedClock:
    """A simulated clock at noon UTC on 1 March 2026."""
    return SimulatedClock(utc(2026, 3, 1, 12))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


# ---------------------------------------------------------------------- serving apps


def _serving() -> Iterator[Serve]:
    with ExitStack() as running:
        yield lambda app: running.enter_context(LoopbackServer(app)).url


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Serve apps on loopback for one test."""
    yield from _serving()


@pytest.fixture(scope="module")
def serve_module() -> Iterator[Serve]:
    """Serve apps on loopback for the whole module (a server takes ~0.2 s to stop)."""
    yield from _serving()


# ---------------------------------------------------------------------- Glimpse


@pytest.fixture(scope="module")
def host() -> Iterator[GlimpseHost]:
    """One emulated Glimpse server per test module (a server takes ~0.2 s to stop)."""
    with GlimpseHost() as h:
        yield h


@pytest.fixture
def glimpse(host: GlimpseHost) -> Iterator[GlimpseSandbox]:
    """A fresh, empty Glimpse world on the module's server, with its own simulated clock
    (starting on a Monday at 09:00 UTC)."""
    with host.serve(population=0) as sandbox:
        yield sandbox


# ---------------------------------------------------------------------- image services


@pytest.fixture(scope="module")
def glif_server(serve_module: Serve) -> tuple[Starlette, str]:
    app = create_glif_app()
    return app, serve_module(app)


@pytest.fixture(scope="module")
def vc_server(serve_module: Serve) -> tuple[Starlette, str]:
    app = create_viewcomfy_app()
    return app, serve_module(app)


@pytest.fixture(scope="module")
def hf_server(serve_module: Serve) -> tuple[Starlette, str]:
    app = create_hf_app()
    return app, serve_module(app)


@pytest.fixture(scope="module")
def oa_server(serve_module: Serve) -> tuple[Starlette, str]:
    app = create_openai_images_app()
    return app, serve_module(app)


# ---------------------------------------------------------------------- text services


@pytest.fixture
def base_url(state: LangflowState, serve: Serve) -> Iterator[str]:
    """The Langflow emulator serving the module's ``state`` fixture."""
    yield serve(create_langflow_app(state))
    state.release()


@pytest.fixture
def chat(chat_state: ChatState, serve: Serve) -> Iterator[tuple[ChatState, str]]:
    """The OpenAI chat emulator serving the module's ``chat_state`` fixture: (state, base URL
    of its /v1 API)."""
    yield chat_state, serve(create_openai_chat_app(chat_state)) + "/v1"
    chat_state.release()


@pytest.fixture
async def running() -> AsyncIterator[Any]:
    """``start(fleet)``: runs a fleet (run/fleet.py) in the background; stopped at the end of
    the test."""
    started: list[tuple[Fleet, asyncio.Task[int]]] = []

    def start(fleet: Fleet) -> asyncio.Task[int]:
        task = asyncio.create_task(fleet.run())
        started.append((fleet, task))
        return task

    yield start
    for fleet, task in started:
        fleet.request_stop()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 40)
