"""The shapes every image backend shares: what is asked (``ImageRequest``), what comes back
(``GeneratedImage``), the ``ImageBackend`` protocol itself, the ``SpendBook`` the router
charges, and ``ImagingFailed`` for when the whole chain gave up.

Backends raise only our own errors (``glimpse_agent.errors``):

    RateLimited / Unavailable   the router moves on to the next backend
    Unauthorized / Rejected /   a configuration failure (wrong key, missing glif, forbidden
    BadResponse                 model, a 2xx we cannot use): the router moves on too
    ContentRejected             the prompt itself was refused: the router stops and raises
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol, runtime_checkable

from glimpse_agent.errors import ServiceError

# What became of one backend's turn. "configuration": a wrong key, an unknown or
# forbidden-model glif, a request or an answer the backend cannot use; "error": a bug.
Outcome = Literal[
    "ok",
    "rate_limited",
    "unavailable",
    "configuration",
    "content_rejected",
    "deadline",
    "breaker_open",
    "over_budget",
    "skipped",
    "error",
]

# Called by long-running backends (ViewComfy) with a percentage and the raw log line.
ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class ImageRequest:
    """What the agent wants drawn. Width/height/seed are hints a backend may not honour."""

    prompt: str
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    persona: str = ""
    #: Backends not to try for this image (Glimpse's generator once its daily six are spent).
    avoid: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.prompt.strip():
            raise ValueError("an image prompt must not be empty")


@dataclass(frozen=True)
class GeneratedImage:
    """One finished image: either ``data`` (with ``mime_type``) or a ``url``, never neither.

    ``timings`` holds seconds per phase (``request``, ``total``...); ``attribution`` is a line
    the post should carry (Glif asks for "powered by glif.app").
    """

    backend: str
    model: str
    prompt: str
    data: bytes | None = None
    mime_type: str | None = None
    url: str | None = None
    width: int | None = None
    height: int | None = None
    cost_usd: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    attribution: str | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.url is None):
            raise ValueError("a GeneratedImage carries either data or a url")
        if self.data is not None and not self.mime_type:
            raise ValueError("image bytes need a mime_type")

    def __repr__(self) -> str:
        # Never dump megabytes of image bytes into a log line or a test failure.
        body = f"{len(self.data)} bytes {self.mime_type}" if self.data is not None else self.url
        return (
            f"GeneratedImage(backend={self.backend!r}, model={self.model!r}, {body}, "
            f"{self.width}x{self.height}, cost_usd={self.cost_usd})"
        )


@runtime_checkable
class ImageBackend(Protocol):
    """One way of making an image. ``name`` is the key used in ``[images] order``."""

    name: str

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        """Make one image or raise one of our ``ServiceError`` subclasses."""
        ...

    def estimated_cost(self) -> float:
        """What one image is expected to cost in USD (0 for free tiers)."""
        ...

    async def check(self) -> None:
        """Return if the backend looks usable (key accepted, endpoint reachable); else raise."""
        ...


class SpendBook(Protocol):
    """Where money spent on images is written down (the ledger implements it)."""

    def spent_on(self, day: date) -> float:
        """USD spent on the UTC ``day``."""
        ...

    def record_spend(self, amount_usd: float, *, backend: str, at: datetime) -> None:
        """Add ``amount_usd`` spent by ``backend`` at the aware instant ``at``."""
        ...


@dataclass(frozen=True)
class Attempt:
    """One backend's turn in the chain, as logged and as listed by ``ImagingFailed``."""

    backend: str
    outcome: Outcome
    duration_s: float = 0.0
    error: str = ""
    #: The backend's own error, for callers that must know what it spent or how long to wait
    #: (a lost answer from Glimpse's generator still counts; a daily 429 blocks until reset).
    cause: BaseException | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        detail = f": {self.error}" if self.error else ""
        return f"{self.backend} {self.outcome}{detail}"


class ImagingFailed(ServiceError):
    """Every backend in the chain failed or was skipped; ``attempts`` says what each did.

    Retryable: the usual causes (rate limits, outages, open breakers) pass with time.
    """

    retryable = True

    def __init__(self, attempts: Sequence[Attempt]) -> None:
        self.attempts = list(attempts)
        listing = "; ".join(str(a) for a in self.attempts) or "no backend configured"
        super().__init__(f"no image backend succeeded ({listing})", service="imaging")
