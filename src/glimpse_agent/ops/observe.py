"""Where the tallies and vitals are fed from, without the adapters knowing: the runtime's shared
``httpx.AsyncClient`` sees every request to Glimpse (``ObservedClient``), and each image
backend of the router is wrapped (``MeteredBackend``) to time and count its attempts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import httpx

from glimpse_agent.imaging import GeneratedImage, ImageBackend, ImageRequest
from glimpse_agent.imaging.router import outcome_of
from glimpse_agent.ops.tallies import Tallies
from glimpse_agent.ops.vitals import Vitals

#: ``observer(request, status or None when no answer came, seconds, the error if any)``.
Observer = Callable[[httpx.Request, int | None, float, BaseException | None], None]


#: The observer of the persona whose task is running: a client shared by a fleet reports each
#: request to the persona that sent it (each member's task has its own context, and its
#: scheduler's jobs inherit it).
_OBSERVER: ContextVar[Observer | None] = ContextVar("glimpse_agent_observer", default=None)


def observe_here(observer: Observer) -> None:
    """Make ``observer`` see the requests this task (and the tasks it starts) sends through an
    ``ObservedClient`` that has no observer of its own."""
    _OBSERVER.set(observer)


class ObservedClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that reports each request's end to ``observer``: its status (for
    a streamed answer, once the head arrived) or the failure, and how long it took. A request
    cancelled by its caller is not reported: it says nothing about the service. Without an
    ``observer`` (one client for a fleet), the sending task's (``observe_here``) is told."""

    def __init__(self, *, observer: Observer | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._observer = observer

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        started = time.monotonic()
        try:
            response = await super().send(request, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._observe(request, None, time.monotonic() - started, exc)
            raise
        self._observe(request, response.status_code, time.monotonic() - started, None)
        return response

    def _observe(
        self,
        request: httpx.Request,
        status: int | None,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        observer = self._observer or _OBSERVER.get()
        if observer is None:
            return
        try:
            observer(request, status, seconds, error)
        except Exception:  # bookkeeping must never fail a request
            return


def glimpse_watcher(base_url: str, vitals: Vitals, tallies: Tallies) -> Observer:
    """An observer that feeds Glimpse's reachability and request tallies from the requests
    sent to ``base_url``'s origin, and ignores every other host."""
    origin = httpx.URL(base_url)

    def observe(
        request: httpx.Request, status: int | None, seconds: float, error: BaseException | None
    ) -> None:
        url = request.url
        if (url.scheme, url.host, url.port) != (origin.scheme, origin.host, origin.port):
            return
        tallies.glimpse_request(status, seconds)
        if status is None:
            vitals.glimpse_failed(_describe(error))
        elif status >= 500:
            vitals.glimpse_failed(f"HTTP {status} from {url.host}")
        else:
            vitals.glimpse_answered()

    return observe


def _describe(error: BaseException | None) -> str:
    """A failure in words that carry no URL, header or body (nothing secret can be in them)."""
    if error is None:
        return "no answer"
    kind = type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        return f"no answer in time ({kind})"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({kind})"
    return kind


class MeteredBackend:
    """An ``ImageBackend`` that counts and times each attempt of the one it wraps (outcome as
    the router names it: ok, rate_limited, unavailable, configuration, content_rejected,
    deadline, error), and its spend. Everything else is the wrapped backend's."""

    def __init__(self, inner: ImageBackend, tallies: Tallies) -> None:
        self.inner = inner
        self.name = inner.name
        self._tallies = tallies

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        started = time.monotonic()
        try:
            image = await self.inner.generate(request)
        except (asyncio.CancelledError, TimeoutError):
            # The router's deadline cut it short.
            self._tallies.backend_attempt(self.name, "deadline", time.monotonic() - started, 0.0)
            raise
        except Exception as exc:
            outcome = outcome_of(exc)
            self._tallies.backend_attempt(self.name, outcome, time.monotonic() - started, 0.0)
            raise
        self._tallies.backend_attempt(self.name, "ok", time.monotonic() - started, image.cost_usd)
        return image

    def estimated_cost(self) -> float:
        return self.inner.estimated_cost()

    async def check(self) -> None:
        await self.inner.check()

    async def aclose(self) -> None:
        closer = getattr(self.inner, "aclose", None)
        if closer is not None:
            await closer()

    def __getattr__(self, name: str) -> Any:
        # Anything else a caller or a test asks of a backend is the wrapped one's.
        return getattr(self.inner, name)
