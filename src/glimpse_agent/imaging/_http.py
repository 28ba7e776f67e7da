"""What the image backends share on top of ``glimpse_agent.http``: a small bounded retry loop
with an injectable sleep, and the words providers use when they refuse a prompt.

HTTP failures become our errors in ``glimpse_agent.http.errors``; each backend module still owns
its API's error *shapes*.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from glimpse_agent.errors import (
    ContentRejected,
    NoAnswer,
    RateLimited,
    Rejected,
    ServiceError,
    Unavailable,
)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# Words providers use when they refuse a prompt rather than a request.
_CONTENT_WORDS = re.compile(
    r"nsfw|safety|content[ _-]?polic|moderation|inappropriate|prohibited|not allowed to generate",
    re.IGNORECASE,
)


class RunFailed(Unavailable):
    """The service took the request and the run itself failed (out of GPU memory, a node
    error, a failure in words we do not know). Another backend may well do better, so the
    router moves on; the same run here would most likely fail the same way (and may cost
    again), so it is not retried on this backend."""

    retryable = False


@dataclass(frozen=True)
class RetryPolicy:
    """How often one backend tries the same request. The chain's deadline still applies."""

    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 20.0
    # A longer Retry-After is better spent on the next backend than waiting here.
    max_retry_after: float = 30.0
    # False for paid backends: after a ``NoAnswer`` the provider may still be running, and
    # billing, the first request.
    retry_unanswered: bool = True

    def delay(self, exc: ServiceError, attempt: int) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or None to give up now."""
        if attempt >= self.attempts or not exc.retryable:
            return None
        if isinstance(exc, NoAnswer) and not self.retry_unanswered:
            return None
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        if isinstance(exc, RateLimited):
            if exc.bucket in {"credits", "quota"}:
                return None  # waiting seconds does not refill an account
            if exc.retry_after is not None:
                if exc.retry_after > self.max_retry_after:
                    return None
                return max(backoff, exc.retry_after)
        return backoff


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    sleep: Sleep,
    log: Any,
    backend: str,
) -> T:
    """``await call()``, retrying our retryable errors as ``policy`` allows."""
    attempt = 1
    while True:
        try:
            return await call()
        except (RateLimited, Unavailable) as exc:
            delay = policy.delay(exc, attempt)
            if delay is None:
                raise
            log.info("image.retry", backend=backend, attempt=attempt, delay_s=delay, error=str(exc))
            await sleep(delay)
            attempt += 1


def looks_like_content_refusal(text: str) -> bool:
    return bool(_CONTENT_WORDS.search(text))


def as_content_refusal(error: ServiceError) -> ServiceError:
    """``error``, or ``ContentRejected`` when it is a plain ``Rejected`` whose text refuses the
    prompt rather than the request: the router then does not hand that prompt to another
    backend."""
    if type(error) is Rejected and looks_like_content_refusal(error.message):
        return ContentRejected(error.message, service=error.service, status=error.status)
    return error
