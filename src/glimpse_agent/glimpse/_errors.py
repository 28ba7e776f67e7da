"""The only place that knows Glimpse's error shapes and turns them into ours.

    HTTP 429                                    -> RateLimited(retry_after, bucket)
    HTTP 401                                    -> Unauthorized
    HTTP 401/403 with a "not verified" code     -> NotVerified
    HTTP 403 otherwise                          -> Unauthorized
    HTTP 409; 400 "already liked/following"...  -> Conflict
    other 4xx                                   -> Rejected
    5xx, 408, timeouts, connection failures     -> Unavailable (NoAnswer for timeouts
                                                   and answers that broke off)
    2xx we cannot read                          -> BadResponse

Error bodies look like ``{"error": {"code", "message", "status"}}``; bare ``{"code",
"message"}`` and ``{"detail": ...}`` are read too. Messages carry the server's code and
message, scrubbed of any secret the server might have echoed. What is not Glimpse's own (the
statuses every service shares, transport failures, ``Retry-After``) is translated by
``glimpse_agent.http``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import httpx

from glimpse_agent.errors import Conflict, NotVerified, ServiceError
from glimpse_agent.glimpse.ratelimit import BUCKETS
from glimpse_agent.http.errors import error_for_status
from glimpse_agent.http.retry_after import retry_after_of, seconds_until
from glimpse_agent.redaction import scrub

SERVICE = "glimpse"
_MAX_MESSAGE = 300

_NOT_VERIFIED_CODE = re.compile(
    r"(not|un)[_\- ]?verified|verification[_\- ]?required", re.IGNORECASE
)
_NOT_VERIFIED_TEXT = re.compile(r"not (yet )?verified|verify your|verification", re.IGNORECASE)
_CONFLICT_CODE = re.compile(r"already|(^|_)own_post|(^|_)self($|_)", re.IGNORECASE)
_CONFLICT_TEXT = re.compile(
    r"\balready (liked|disliked|reacted|following|followed)\b|your own post|follow yourself",
    re.IGNORECASE,
)


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return response.text


def error_fields(body: Any) -> tuple[str, str, dict[str, Any]]:
    """``(code, message, details)`` from an error body of any of the shapes we know."""
    if isinstance(body, str):
        return "", body.strip(), {}
    if not isinstance(body, dict):
        return "", "", {}
    inner = body.get("error")
    details: dict[str, Any] = {k: v for k, v in body.items() if k != "error"}
    if isinstance(inner, dict):
        details.update(inner)
        code = inner.get("code") or body.get("code") or ""
        message = inner.get("message") or body.get("message") or body.get("detail") or ""
    else:
        code = body.get("code") or (inner if isinstance(inner, str) and " " not in inner else "")
        message = (
            body.get("message") or body.get("detail") or (inner if isinstance(inner, str) else "")
        )
    if not isinstance(message, str):
        message = json.dumps(message)
    return str(code), message, details


def _bucket_of(code: str, details: dict[str, Any], fallback: str) -> str:
    named = details.get("bucket")
    if isinstance(named, str) and named:
        return named
    for bucket in BUCKETS:
        if bucket in code.lower():
            return bucket
    return fallback


def _retry_after(response: httpx.Response, details: dict[str, Any], now: datetime) -> float | None:
    """Retry-After first; else the time left until X-RateLimit-Reset; else the body's hints."""
    seconds = retry_after_of(response.headers, now=now)
    if seconds is not None:
        return seconds
    for value in (
        response.headers.get("x-ratelimit-reset"),
        details.get("resets_at"),
        details.get("reset_at"),
    ):
        seconds = seconds_until(None if value is None else str(value), now=now)
        if seconds is not None:
            return seconds
    raw = details.get("retry_after")
    if isinstance(raw, int | float):
        return max(0.0, float(raw))
    return None


def error_for_response(
    response: httpx.Response,
    *,
    method: str,
    path: str,
    bucket: str,
    now: datetime,
    secrets: Iterable[str | None],
) -> ServiceError:
    """Our error for a non-2xx response (its body must already be read)."""
    status = response.status_code
    code, message, details = error_fields(_decode(response))
    where = f"{method} {path}"
    detail = f"{code}: {message}" if code and message else (code or message or "no detail")
    text = scrub(f"{where} -> HTTP {status} {detail}", secrets)[:_MAX_MESSAGE]
    if status in (401, 403) and (
        _NOT_VERIFIED_CODE.search(code) or (status == 403 and _NOT_VERIFIED_TEXT.search(message))
    ):
        return NotVerified(text, service=SERVICE, status=status)
    if status == 409 or (
        status in (400, 422) and (_CONFLICT_CODE.search(code) or _CONFLICT_TEXT.search(message))
    ):
        return Conflict(text, service=SERVICE, status=status)
    return error_for_status(
        status,
        text,
        service=SERVICE,
        retry_after=_retry_after(response, details, now) if status == 429 else None,
        bucket=_bucket_of(code, details, bucket),
    )
