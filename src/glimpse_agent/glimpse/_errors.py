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

    HTTP 2xx {"success": false} (or "ok": false,
      "status": "error"), the error shapes above  -> what that error would be with a 4xx
                                                   status (Rejected, Conflict...): not done

Error bodies look like ``{"error": {"code", "message", "status"}}``; bare ``{"code",
"message"}`` and ``{"detail": ...}`` are read too. A 429 naming a bucket we do not know is
counted against the endpoint's own (and logged); its wait is believed only as far as that
bucket's longest window reaches (``limits.latest_block``). Messages carry the server's code and
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

from glimpse_agent import limits
from glimpse_agent.errors import BadResponse, Conflict, NotVerified, Rejected, ServiceError
from glimpse_agent.glimpse.ratelimit import bucket_for, longest_wait
from glimpse_agent.http.bodies import parse_json
from glimpse_agent.http.errors import error_for_status
from glimpse_agent.http.retry_after import parse_retry_after, retry_after_of, seconds_until
from glimpse_agent.logs import get_logger
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


_NOT_DONE_STATUS = ("error", "failed", "failure", "fail")


def _decode(response: httpx.Response) -> Any:
    try:
        return parse_json(response.content)
    except ValueError:  # not JSON, not UTF-8, or nested too deep: the text is the message
        return response.content[:4096].decode("utf-8", "replace")


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


def _bucket_of(code: str, details: dict[str, Any], fallback: str, where: str) -> str:
    """The bucket a 429 names (in its body, or its code: ``posts_daily_limit``), if it is one
    the ledger counts; else the endpoint's own, ``fallback``. A name we do not know is logged:
    counting it nowhere would let the agent retry into the block."""
    named = details.get("bucket")
    if isinstance(named, str) and named:
        if named in limits.BUCKETS:
            return named
        get_logger("glimpse_agent.glimpse").warning(
            "glimpse.unknown_bucket",
            where=where,
            named=scrub(named)[:40],
            counted_as=fallback,
        )
        return fallback
    for bucket in limits.BUCKETS:
        if bucket in code.lower():
            return bucket
    return fallback


def _retry_after(
    response: httpx.Response, details: dict[str, Any], now: datetime, longest: float
) -> float | None:
    """Retry-After first; else the time left until X-RateLimit-Reset; else the body's hints;
    each within ``[0, longest]``."""
    seconds = retry_after_of(response.headers, now=now, longest=longest)
    if seconds is not None:
        return seconds
    for value in (
        response.headers.get("x-ratelimit-reset"),
        details.get("resets_at"),
        details.get("reset_at"),
    ):
        if isinstance(value, bool):
            continue
        seconds = seconds_until(None if value is None else str(value), now=now, longest=longest)
        if seconds is not None:
            return seconds
    raw = details.get("retry_after")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return parse_retry_after(str(raw), now=now, longest=longest)
    return None


def not_done(body: Any) -> bool:
    """True when a 2xx body says the request was not carried out: ``"success": false``,
    ``"ok": false``, ``"status": "error"``, or an ``"error"`` with no ``"success": true``."""
    if not isinstance(body, dict):
        return False
    if body.get("success") is False or body.get("ok") is False:
        return True
    status = body.get("status")
    if isinstance(status, str) and status.strip().lower() in _NOT_DONE_STATUS:
        return True
    error = body.get("error")
    return bool(error) and body.get("success") is not True and isinstance(error, dict | str)


def error_for_not_done(
    status: int, body: Any, *, method: str, path: str, secrets: Iterable[str | None]
) -> ServiceError:
    """Our error for a 2xx answer whose body says it was not done (``not_done``): what its
    error would be under a 4xx (a ``Conflict`` for "already liked"), else ``Rejected``. Never
    success: a like the server says it did not make is not counted as made.

    A new post is the exception: ``BadResponse``, so that the agent looks for it before it
    posts again (an answer this confused is no proof that nothing was posted)."""
    code, message, _ = error_fields(body)
    detail = f"{code}: {message}" if code and message else (code or message or "no detail")
    text = scrub(f"{method} {path} -> HTTP {status} but not done: {detail}", secrets)
    text = text[:_MAX_MESSAGE]
    if bucket_for(method, path) == "posts" and method.upper() == "POST":
        return BadResponse(text, service=SERVICE, status=status)
    if _NOT_VERIFIED_CODE.search(code) or _NOT_VERIFIED_TEXT.search(message):
        return NotVerified(text, service=SERVICE, status=status)
    if _CONFLICT_CODE.search(code) or _CONFLICT_TEXT.search(message):
        return Conflict(text, service=SERVICE, status=status)
    return Rejected(text, service=SERVICE, status=status)


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
    bucket = _bucket_of(code, details, bucket, where) if status == 429 else bucket
    return error_for_status(
        status,
        text,
        service=SERVICE,
        retry_after=(
            _retry_after(response, details, now, longest_wait(bucket, now))
            if status == 429
            else None
        ),
        bucket=bucket,
    )
