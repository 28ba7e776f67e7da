"""The fallback chain: try each backend in ``[images] order`` until one makes an image.

Rules, in the order they apply to each backend:
1. the chain's deadline: once passed, nothing more is tried; each attempt gets at most what
   is left of it;
2. the circuit breaker: a backend that failed ``breaker_failures`` times in a row is skipped
   for ``breaker_cooldown``, then gets one trial (half-open): success closes the breaker,
   failure opens it again;
3. the budget: a backend whose estimated cost would take today's (UTC) spend past the
   persona's ``budget_usd_per_day`` is not started.

A failure moves the chain on when another backend may do better: rate limits and outages
(retryable), and configuration failures (bad key, unknown or forbidden-model glif, a request
the service refuses). A ``ContentRejected`` stops the chain: the prompt itself was refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from glimpse_agent.clock import Clock
from glimpse_agent.errors import (
    BudgetExceeded,
    ContentRejected,
    GlimpseAgentError,
    RateLimited,
    Unavailable,
)
from glimpse_agent.imaging.base import (
    Attempt,
    GeneratedImage,
    ImageBackend,
    ImageRequest,
    ImagingFailed,
    Outcome,
    SpendBook,
)
from glimpse_agent.logs import get_logger

Closer = Callable[[], Awaitable[None]]


def outcome_of(exc: BaseException) -> Outcome:
    """How an attempt's exception is reported and treated."""
    if isinstance(exc, ContentRejected):
        return "content_rejected"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, Unavailable):
        return "unavailable"
    if isinstance(exc, GlimpseAgentError):
        return "configuration"
    return "error"


@dataclass
class _Breaker:
    failures: int = 0
    open_until: datetime | None = None
    trial_running: bool = False
    #: A 429's Retry-After: the backend is not asked again before then (kept across breaker
    #: resets, since a success elsewhere says nothing about this backend's limit).
    rest_until: datetime | None = None


#: The longest Retry-After an image backend is rested for; a longer one is the service's
#: mistake or a daily quota, and a day later it is worth asking again.
MAX_REST = timedelta(days=1)


class ImageRouter:
    """Makes one image with the first backend that can. Breaker state lives in memory."""

    def __init__(
        self,
        backends: Sequence[ImageBackend],
        *,
        spend: SpendBook,
        budget_usd_per_day: float,
        clock: Clock,
        deadline_seconds: float = 900.0,
        breaker_failures: int = 3,
        breaker_cooldown: timedelta = timedelta(minutes=30),
        persona: str = "",
        closers: Sequence[Closer] = (),
    ) -> None:
        self.backends = list(backends)
        self.spend = spend
        self.budget = budget_usd_per_day
        self.clock = clock
        self.deadline = deadline_seconds
        self.breaker_failures = breaker_failures
        self.breaker_cooldown = breaker_cooldown
        self.log = get_logger("glimpse_agent.imaging", persona=persona)
        self._breakers = {b.name: _Breaker() for b in self.backends}
        self._closers = list(closers)
        #: What each backend did in the last ``generate``, its failure or success alike.
        self.last_attempts: list[Attempt] = []

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.backends]

    def breaker_state(self, name: str) -> str:
        """The breaker of ``name``: closed, open, or half-open (the next try is a trial)."""
        breaker = self._breakers[name]
        if breaker.open_until is None:
            return "closed"
        return "open" if self.clock.now() < breaker.open_until else "half-open"

    # ------------------------------------------------------------------ generate

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        """An image from the first backend that makes one.

        Raises ``ContentRejected`` (the prompt was refused), ``BudgetExceeded`` (no backend
        could start within today's budget), or ``ImagingFailed`` listing every attempt.
        """
        attempts: list[Attempt] = []
        self.last_attempts = attempts
        started_at, started = self.clock.now(), time.monotonic()
        over_budget = tried = 0
        for backend in self.backends:
            # Real time and clock time both count: in the daemon they agree; under a
            # simulated clock, HTTP takes real time and backoff sleeps take clock time.
            elapsed = max(
                time.monotonic() - started, (self.clock.now() - started_at).total_seconds()
            )
            remaining = self.deadline - elapsed
            if remaining <= 0:
                self._note(
                    attempts, Attempt(backend.name, "deadline", 0.0, "the chain's deadline passed")
                )
                break
            if backend.name in request.avoid:
                self._note(attempts, Attempt(backend.name, "skipped", 0.0, "its quota is spent"))
                continue
            rest_until = self._breakers[backend.name].rest_until
            if rest_until is not None and self.clock.now() < rest_until:
                why = f"it asked us to wait until {rest_until.isoformat()} (Retry-After)"
                self._note(attempts, Attempt(backend.name, "skipped", 0.0, why))
                continue
            if not self._admit(backend.name):
                self._note(attempts, Attempt(backend.name, "breaker_open"))
                continue
            cost = backend.estimated_cost()
            today = self.clock.now().astimezone(UTC).date()
            spent = self.spend.spent_on(today)
            if spent + cost > self.budget + 1e-9:
                over_budget += 1
                self._breakers[backend.name].trial_running = False
                self._note(
                    attempts,
                    Attempt(
                        backend.name,
                        "over_budget",
                        0.0,
                        f"${cost:.3f} more would pass ${self.budget:.2f}/day (${spent:.3f} spent)",
                    ),
                )
                continue
            tried += 1
            image = await self._attempt(backend, request, remaining, attempts)
            if image is not None:
                if image.cost_usd > 0:
                    self.spend.record_spend(
                        image.cost_usd, backend=backend.name, at=self.clock.now()
                    )
                return image
        if tried == 0 and over_budget:
            raise BudgetExceeded(
                f"every image backend would pass the ${self.budget:.2f} daily budget: "
                + "; ".join(str(a) for a in attempts)
            )
        raise ImagingFailed(attempts)

    async def _attempt(
        self,
        backend: ImageBackend,
        request: ImageRequest,
        remaining: float,
        attempts: list[Attempt],
    ) -> GeneratedImage | None:
        """One backend's try: the image, or None after recording why not."""
        t0 = time.perf_counter()
        timer = asyncio.timeout(remaining)
        try:
            async with timer:
                image = await backend.generate(request)
        except ContentRejected as exc:
            # The backend works; the prompt does not. Not a breaker failure, and no other
            # backend should be asked to draw what this one refused.
            self._breakers[backend.name].trial_running = False
            self._note(
                attempts,
                Attempt(backend.name, "content_rejected", time.perf_counter() - t0, str(exc)),
            )
            raise
        except Exception as exc:
            self._failed(backend.name)
            rest = exc.rest(MAX_REST) if isinstance(exc, RateLimited) else None
            if rest is not None:
                self._breakers[backend.name].rest_until = self.clock.now() + rest
            outcome: Outcome = outcome_of(exc)
            error = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError) and timer.expired():
                outcome, error = "deadline", "no image within the chain's deadline"
            if outcome == "error":
                # A bug in a backend must not stop the persona posting with another one.
                self.log.exception("image.backend_bug", backend=backend.name)
            took = time.perf_counter() - t0
            self._note(attempts, Attempt(backend.name, outcome, took, error, cause=exc))
            return None
        self._succeeded(backend.name)
        self._note(attempts, Attempt(backend.name, "ok", time.perf_counter() - t0))
        return image

    def _note(self, attempts: list[Attempt], attempt: Attempt) -> None:
        attempts.append(attempt)
        level = "info" if attempt.outcome == "ok" else "warning"
        getattr(self.log, level)(
            "image.attempt",
            backend=attempt.backend,
            outcome=attempt.outcome,
            duration_s=round(attempt.duration_s, 3),
            error=attempt.error or None,
        )

    # ------------------------------------------------------------------ breaker

    def _admit(self, name: str) -> bool:
        breaker = self._breakers[name]
        if breaker.open_until is None:
            return True
        if self.clock.now() < breaker.open_until or breaker.trial_running:
            return False
        breaker.trial_running = True  # half-open: this attempt is the one trial
        return True

    def _failed(self, name: str) -> None:
        breaker = self._breakers[name]
        breaker.failures += 1
        if breaker.trial_running or breaker.failures >= self.breaker_failures:
            breaker.open_until = self.clock.now() + self.breaker_cooldown
            self.log.warning(
                "image.breaker_open",
                backend=name,
                failures=breaker.failures,
                until=breaker.open_until.isoformat(),
            )
        breaker.trial_running = False

    def _succeeded(self, name: str) -> None:
        breaker = self._breakers[name]
        if breaker.open_until is not None:
            self.log.info("image.breaker_closed", backend=name)
        self._breakers[name] = _Breaker(rest_until=breaker.rest_until)

    # ------------------------------------------------------------------ check / close

    async def check(self, seconds_each: float = 60.0) -> dict[str, Exception | None]:
        """Each backend's ``check()``: None if usable, else the error it raised."""
        results: dict[str, Exception | None] = {}
        for backend in self.backends:
            try:
                async with asyncio.timeout(seconds_each):
                    await backend.check()
                results[backend.name] = None
            except TimeoutError:
                results[backend.name] = Unavailable(
                    f"no answer within {seconds_each:.0f} s", service=backend.name
                )
            except Exception as exc:
                results[backend.name] = exc
        return results

    async def aclose(self) -> None:
        """Close what the backends opened (SDK clients, an HTTP client made for them)."""
        for backend in self.backends:
            closer = getattr(backend, "aclose", None)
            if closer is not None:
                await closer()
        for close in self._closers:
            await close()
