"""What the HTTP backends share: turning a status code, a transport failure or an SDK
exception's parts into our errors, and a small bounded retry loop with an injectable sleep.

Each backend module still owns its API's error *shapes*; this module only knows HTTP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from glimpse_agent.errors import (
    BadResponse,
    ContentRejected,
    RateLimited,
    Rejected,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.redaction import redact_text

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# Words providers use when they refuse a prompt rather than a request.
_CONTENT_WORDS = re.compile(
    r"nsfw|safety|content[ _-]?polic|moderation|inappropriate|prohibited|not allowed to generate",
    re.IGNORECASE,
)


# How much past ``limit`` an error text is masked before it is cut: room for a whole secret
# that starts inside the part we keep.
_SECRET_ROOM = 4096


class NoAnswer(Unavailable):
    """The request was sent but no usable answer came back (a timeout, a cut stream). Paid
    backends do not send it again: the provider may still be running, and billing, the first."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often one backend tries the same request. The chain's deadline still applies."""

    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 20.0
    # A longer Retry-After is better spent on the next backend than waiting here.
    max_retry_after: float = 30.0
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


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def looks_like_content_refusal(text: str) -> bool:
    return bool(_CONTENT_WORDS.search(text))


def error_for_status(
    status: int, detail: str, *, service: str, retry_after: float | None = None
) -> ServiceError:
    """Our error for a non-success HTTP status. ``detail`` is the server's message."""
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return Unauthorized(message, service=service, status=status)
    if status == 429:
        return RateLimited(message, service=service, status=status, retry_after=retry_after)
    if status >= 500 or status == 408:
        return Unavailable(message, service=service, status=status)
    if looks_like_content_refusal(detail):
        return ContentRejected(message, service=service, status=status)
    return Rejected(message, service=service, status=status)


def short_detail(body: Any, limit: int = 200) -> str:
    """The human part of an error body (``detail``, ``error``, ``message``), redacted and
    then shortened: servers echo requests back, and a request may hold a key."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return redact_text(body.strip()[: limit + _SECRET_ROOM])[:limit]
    text = ""
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail")
            if value:
                text = value if isinstance(value, str) else json.dumps(value)
                break
    elif body is not None:
        text = json.dumps(body)
    # Masked before it is shortened: a cut through a secret would leave its head unmasked.
    return redact_text(text.strip()[: limit + _SECRET_ROOM])[:limit]


def error_for_response(response: httpx.Response, *, service: str) -> ServiceError:
    """Our error for an ``httpx`` response whose status says failure (body must be read)."""
    return error_for_status(
        response.status_code,
        short_detail(response.content),
        service=service,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


@contextmanager
def transport_errors(service: str) -> Iterator[None]:
    """Translate ``httpx`` transport failures raised inside the block into ``Unavailable``:
    ``NoAnswer`` when the request went out but its answer did not come back whole (a timeout,
    a connection dropped mid-answer), plain ``Unavailable`` when it could not be sent,
    ``BadResponse`` for a body that cannot be decoded. No ``httpx`` error leaves the block."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise NoAnswer(f"timed out ({type(exc).__name__})", service=service) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise NoAnswer(
            f"the connection dropped before the answer was complete ({type(exc).__name__})",
            service=service,
        ) from exc
    except httpx.TransportError as exc:
        raise Unavailable(
            f"cannot reach the service ({type(exc).__name__})", service=service
        ) from exc
    except httpx.DecodingError as exc:
        # The answer came whole but its Content-Encoding is a lie: not worth sending again.
        raise BadResponse(
            f"the answer cannot be decoded ({type(exc).__name__})", service=service
        ) from exc
    except httpx.HTTPError as exc:  # TooManyRedirects, and whatever httpx adds later
        raise Unavailable(f"the request failed ({type(exc).__name__})", service=service) from exc
