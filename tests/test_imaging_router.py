"""The fallback chain: order, what moves it on, breaker, deadline, budget and spend."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
import structlog

from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.errors import (
    BadResponse,
    BudgetExceeded,
    ContentRejected,
    RateLimited,
    Rejected,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.imaging.backends.glif import ForbiddenModel
from glimpse_agent.imaging.base import GeneratedImage, ImageRequest, ImagingFailed
from glimpse_agent.imaging.router import ImageRouter

REQ = ImageRequest(prompt="a quiet harbour", persona="aurora")
HANG = "hang"


class MemorySpend:
    """An in-memory SpendBook."""

    def __init__(self) -> None:
        self.by_day: dict[date, float] = defaultdict(float)
        self.records: list[tuple[float, str, datetime]] = []

    def spent_on(self, day: date) -> float:
        return self.by_day[day]

    def record_spend(self, amount_usd: float, *, backend: str, at: datetime) -> None:
        self.by_day[at.astimezone(UTC).date()] += amount_usd
        self.records.append((amount_usd, backend, at))


class Fake:
    """A backend that plays a script: exceptions to raise, HANG, or "ok"."""

    def __init__(
        self,
        name: str,
        *script: object,
        cost: float = 0.0,
        clock: SimulatedClock | None = None,
        takes: float = 0.0,
    ) -> None:
        self.name = name
        self.script = list(script)
        self.cost = cost
        self.calls = 0
        self.clock = clock
        self.takes = takes

    def estimated_cost(self) -> float:
        return self.cost

    async def check(self) -> None:
        if self.script and isinstance(self.script[0], BaseException):
            raise self.script[0]

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        self.calls += 1
        step = self.script.pop(0) if self.script else "ok"
        if self.clock is not None and self.takes:
            self.clock.advance(self.takes)
        if step == HANG:
            await asyncio.Event().wait()
        if isinstance(step, BaseException):
            raise step
        return GeneratedImage(
            backend=self.name,
            model="fake",
            prompt=request.prompt,
            url=f"https://img.example/{self.name}.png",
            cost_usd=self.cost,
        )


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(utc(2026, 3, 1, 23, 50))


@pytest.fixture
def spend() -> MemorySpend:
    return MemorySpend()


def router(
    *backends: Fake,
    clock: SimulatedClock,
    spend: MemorySpend,
    budget: float = 1.0,
    deadline: float = 900.0,
) -> ImageRouter:
    return ImageRouter(
        list(backends),
        spend=spend,
        budget_usd_per_day=budget,
        clock=clock,
        deadline_seconds=deadline,
        breaker_failures=3,
        breaker_cooldown=timedelta(minutes=30),
        persona="aurora",
    )


async def test_first_backend_wins(clock: SimulatedClock, spend: MemorySpend) -> None:
    """When the first backend works, the others are never asked."""
    a, b = Fake("a"), Fake("b")
    image = await router(a, b, clock=clock, spend=spend).generate(REQ)
    assert image.backend == "a" and (a.calls, b.calls) == (1, 0)


async def test_retryable_failures_fall_through_in_order(
    clock: SimulatedClock, spend: MemorySpend
) -> None:
    """Unavailable then RateLimited move the chain on, in the configured order."""
    a = Fake("a", Unavailable("down", service="a"))
    b = Fake("b", RateLimited("slow down", service="b", retry_after=60))
    c = Fake("c")
    with structlog.testing.capture_logs() as logs:
        image = await router(a, b, c, clock=clock, spend=spend).generate(REQ)
    assert image.backend == "c"
    attempts = [(e["backend"], e["outcome"]) for e in logs if e["event"] == "image.attempt"]
    assert attempts == [("a", "unavailable"), ("b", "rate_limited"), ("c", "ok")]
    assert all("duration_s" in e for e in logs if e["event"] == "image.attempt")


@pytest.mark.parametrize(
    "error",
    [
        Unauthorized("bad key", service="x"),
        ForbiddenModel("glif-1", ["Flux Dev"]),
        Rejected("HTTP 404: glif not found", service="x"),
        BadResponse("text, not an image", service="x"),
    ],
)
async def test_configuration_failures_fall_through(
    clock: SimulatedClock, spend: MemorySpend, error: ServiceError
) -> None:
    """A wrong key, a forbidden-model or unknown glif, an unusable answer: try the next one."""
    image = await router(Fake("a", error), Fake("b"), clock=clock, spend=spend).generate(REQ)
    assert image.backend == "b"


async def test_content_rejection_stops_the_chain(clock: SimulatedClock, spend: MemorySpend) -> None:
    """ContentRejected is raised as is; no other backend is asked to draw the prompt."""
    a, b = Fake("a", ContentRejected("NSFW", service="a")), Fake("b")
    with pytest.raises(ContentRejected):
        await router(a, b, clock=clock, spend=spend).generate(REQ)
    assert b.calls == 0


async def test_a_backend_bug_falls_through(clock: SimulatedClock, spend: MemorySpend) -> None:
    """An unexpected exception in a backend is logged and the next backend is tried."""
    with structlog.testing.capture_logs() as logs:
        image = await router(
            Fake("a", KeyError("x")), Fake("b"), clock=clock, spend=spend
        ).generate(REQ)
    assert image.backend == "b"
    assert any(e["event"] == "image.backend_bug" for e in logs)


async def test_all_failing_raises_imaging_failed(clock: SimulatedClock, spend: MemorySpend) -> None:
    """When every backend fails: ImagingFailed, a retryable ServiceError listing each attempt."""
    a = Fake("a", Unavailable("down", service="a"))
    b = Fake("b", Unauthorized("HTTP 401", service="b"))
    with pytest.raises(ImagingFailed) as info:
        await router(a, b, clock=clock, spend=spend).generate(REQ)
    assert isinstance(info.value, ServiceError) and info.value.retryable
    assert [(x.backend, x.outcome) for x in info.value.attempts] == [
        ("a", "unavailable"),
        ("b", "configuration"),
    ]
    assert "a unavailable" in str(info.value)


async def test_breaker_opens_then_half_opens_then_closes(
    clock: SimulatedClock, spend: MemorySpend
) -> None:
    """3 failures in a row open a's breaker for 30 min; then one trial; success closes it."""
    down = Unavailable("down", service="a")
    a, b = Fake("a", down, down, down, down), Fake("b")
    r = router(a, b, clock=clock, spend=spend)
    for _ in range(3):
        assert (await r.generate(REQ)).backend == "b"
    assert r.breaker_state("a") == "open" and a.calls == 3
    await r.generate(REQ)
    assert a.calls == 3  # skipped while open
    clock.advance(timedelta(minutes=30))
    assert r.breaker_state("a") == "half-open"
    await r.generate(REQ)  # the trial fails (4th scripted failure): open again
    assert a.calls == 4 and r.breaker_state("a") == "open"
    await r.generate(REQ)
    assert a.calls == 4
    clock.advance(timedelta(minutes=30))
    assert (await r.generate(REQ)).backend == "a"  # the trial succeeds
    assert r.breaker_state("a") == "closed"


async def test_success_resets_the_failure_count(clock: SimulatedClock, spend: MemorySpend) -> None:
    """Failures must be consecutive: a success in between keeps the breaker closed."""
    down = Unavailable("down", service="a")
    a = Fake("a", down, down, "ok", down, down)
    r = router(a, Fake("b"), clock=clock, spend=spend)
    for _ in range(5):
        await r.generate(REQ)
    assert r.breaker_state("a") == "closed"


async def test_content_rejection_does_not_trip_the_breaker(
    clock: SimulatedClock, spend: MemorySpend
) -> None:
    """Refused prompts say nothing about the backend's health."""
    refused = ContentRejected("NSFW", service="a")
    r = router(Fake("a", refused, refused, refused), clock=clock, spend=spend)
    for _ in range(3):
        with pytest.raises(ContentRejected):
            await r.generate(REQ)
    assert r.breaker_state("a") == "closed"


async def test_all_breakers_open_fails_fast(clock: SimulatedClock, spend: MemorySpend) -> None:
    """With every breaker open the chain fails at once, listing the skipped backends."""
    down = Unavailable("down", service="a")
    a = Fake("a", down, down, down)
    r = router(a, clock=clock, spend=spend)
    for _ in range(3):
        with pytest.raises(ImagingFailed):
            await r.generate(REQ)
    with pytest.raises(ImagingFailed) as info:
        await r.generate(REQ)
    assert [x.outcome for x in info.value.attempts] == ["breaker_open"] and a.calls == 3


async def test_hanging_backend_is_cut_at_the_deadline(
    clock: SimulatedClock, spend: MemorySpend
) -> None:
    """A backend that never answers is cancelled when the chain's deadline passes."""
    a, b = Fake("a", HANG), Fake("b")
    started = time.monotonic()
    with pytest.raises(ImagingFailed) as info:
        await router(a, b, clock=clock, spend=spend, deadline=0.1).generate(REQ)
    assert time.monotonic() - started < 1.0
    assert [x.outcome for x in info.value.attempts] == ["deadline", "deadline"]
    assert b.calls == 0  # listed as skipped: the deadline had passed


async def test_each_attempt_gets_only_what_is_left(
    clock: SimulatedClock, spend: MemorySpend
) -> None:
    """After a backend used 0.95 s of a 1 s deadline (clock time), the next gets ~0.05 s."""
    a = Fake("a", Unavailable("slow and down", service="a"), clock=clock, takes=0.95)
    b = Fake("b", HANG)
    started = time.monotonic()
    with pytest.raises(ImagingFailed) as info:
        await router(a, b, clock=clock, spend=spend, deadline=1.0).generate(REQ)
    assert time.monotonic() - started < 0.5
    assert [x.outcome for x in info.value.attempts] == ["unavailable", "deadline"]


async def test_no_attempt_starts_after_the_deadline(
    clock: SimulatedClock, spend: MemorySpend
) -> None:
    """A backend that used up the whole deadline (clock time) leaves none for the next."""
    a = Fake("a", Unavailable("down", service="a"), clock=clock, takes=1000)
    b = Fake("b")
    with pytest.raises(ImagingFailed):
        await router(a, b, clock=clock, spend=spend, deadline=900).generate(REQ)
    assert b.calls == 0


async def test_spend_is_recorded_for_paid_images(clock: SimulatedClock, spend: MemorySpend) -> None:
    """A paid image records its cost, backend and time; a free one records nothing."""
    r = router(Fake("paid", cost=0.04), clock=clock, spend=spend)
    await r.generate(REQ)
    assert spend.records == [(0.04, "paid", clock.now())]
    await router(Fake("free"), clock=clock, spend=spend).generate(REQ)
    assert len(spend.records) == 1


async def test_budget_skips_dear_backends_for_cheaper_ones(
    clock: SimulatedClock, spend: MemorySpend
) -> None:
    """A backend that would pass today's budget is not started; a cheaper one is used."""
    spend.record_spend(0.97, backend="earlier", at=clock.now())
    dear, cheap = Fake("dear", cost=0.04), Fake("cheap", cost=0.0)
    image = await router(dear, cheap, clock=clock, spend=spend, budget=1.0).generate(REQ)
    assert image.backend == "cheap" and dear.calls == 0


async def test_budget_refusal_when_nothing_fits(clock: SimulatedClock, spend: MemorySpend) -> None:
    """When no backend fits the budget: BudgetExceeded, and no backend was called."""
    spend.record_spend(0.99, backend="earlier", at=clock.now())
    a, b = Fake("a", cost=0.02), Fake("b", cost=0.04)
    with pytest.raises(BudgetExceeded, match="daily budget"):
        await router(a, b, clock=clock, spend=spend, budget=1.0).generate(REQ)
    assert a.calls == b.calls == 0


async def test_budget_day_is_the_utc_date(clock: SimulatedClock, spend: MemorySpend) -> None:
    """Yesterday's (UTC) spend does not count: at 00:05 UTC the budget is fresh."""
    spend.record_spend(1.0, backend="a", at=clock.now())  # 23:50 UTC
    r = router(Fake("a", cost=0.5), clock=clock, spend=spend, budget=1.0)
    with pytest.raises(BudgetExceeded):
        await r.generate(REQ)
    clock.advance(timedelta(minutes=15))
    assert (await r.generate(REQ)).backend == "a"


async def test_exact_budget_is_allowed(clock: SimulatedClock, spend: MemorySpend) -> None:
    """Spending exactly up to the budget is fine (0.96 + 0.04 = 1.00)."""
    spend.record_spend(0.96, backend="x", at=clock.now())
    assert (
        await router(Fake("a", cost=0.04), clock=clock, spend=spend, budget=1.0).generate(REQ)
    ).backend == "a"


async def test_check_reports_each_backend(clock: SimulatedClock, spend: MemorySpend) -> None:
    """check() maps each backend to None (usable) or the error its check raised."""
    bad = Unauthorized("HTTP 401", service="b")
    result = await router(Fake("a"), Fake("b", bad), clock=clock, spend=spend).check()
    assert result == {"a": None, "b": bad}


async def test_a_backend_the_request_avoids_is_skipped(
    clock: SimulatedClock, spend: MemorySpend
) -> None:
    """A backend whose quota the agent knows is spent (Glimpse's generator after its six a day)
    is not asked at all: the next one makes the image, and the chain says why it skipped."""
    glimpse, local = Fake("glimpse"), Fake("local")
    chain = router(glimpse, local, clock=clock, spend=spend)
    image = await chain.generate(
        ImageRequest(prompt="a quiet harbour", persona="aurora", avoid=frozenset({"glimpse"}))
    )
    assert image.backend == "local" and (glimpse.calls, local.calls) == (0, 1)
    first = chain.last_attempts[0]
    assert (first.backend, first.outcome) == ("glimpse", "skipped")


async def test_a_429_rests_the_backend_until_its_retry_after(
    clock: SimulatedClock, spend: MemorySpend
) -> None:
    """A backend that answered 429 with Retry-After: 3600 is not asked again within the hour
    (the next backend draws meanwhile), and is asked once the hour has passed."""
    a = Fake("a", RateLimited("slow down", service="a", retry_after=3600), "ok", "ok")
    b = Fake("b")
    chain = router(a, b, clock=clock, spend=spend)
    assert (await chain.generate(REQ)).backend == "b"
    clock.advance(3599)
    with structlog.testing.capture_logs() as logs:
        assert (await chain.generate(REQ)).backend == "b"
    assert a.calls == 1
    skipped = [e for e in logs if e["event"] == "image.attempt" and e["backend"] == "a"]
    assert skipped[0]["outcome"] == "skipped" and "Retry-After" in skipped[0]["error"]
    clock.advance(2)
    assert (await chain.generate(REQ)).backend == "a" and a.calls == 2


async def test_an_absurd_retry_after_rests_a_backend_one_day_at_most(
    clock: SimulatedClock, spend: MemorySpend
) -> None:
    """Retry-After: 1e12 rests the backend for a day, not for ever."""
    a = Fake("a", RateLimited("slow down", service="a", retry_after=1e12), "ok")
    chain = router(a, Fake("b"), clock=clock, spend=spend)
    assert (await chain.generate(REQ)).backend == "b"
    clock.advance(timedelta(hours=23, minutes=59))
    assert (await chain.generate(REQ)).backend == "b"
    clock.advance(timedelta(minutes=2))
    assert (await chain.generate(REQ)).backend == "a"
