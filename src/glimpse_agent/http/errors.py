"""The one translation of HTTP failures into our errors (``glimpse_agent.errors``).

    before an answer (``httpx``)                          a status that is not success
    timeout                              -> NoAnswer        401, 403        -> Unauthorized
    answer broke off (RemoteProtocolError,                  429             -> RateLimited
      ReadError)                         -> NoAnswer        408, 5xx        -> Unavailable
    invalid URL, unsupported scheme      -> Rejected        any other       -> Rejected
    request cannot be sent (an illegal
      header value, a non-ASCII key)     -> Rejected
    answer cannot be decoded             -> BadResponse
    anything else (refused, DNS...)      -> Unavailable

Adapters keep what only their service says (Glimpse's ``{"error": {code, message}}`` and its
conflicts, Glif's HTTP-200 errors, Langflow's hints, an SDK's codes) and hand the rest to these
functions. Every text is scrubbed (``redaction.scrub``): servers and ``httpx`` quote requests
back, and a request carries keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx

from glimpse_agent.errors import (
    BadResponse,
    NoAnswer,
    RateLimited,
    Rejected,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.http.bodies import parse_json
from glimpse_agent.http.retry_after import retry_after_of
from glimpse_agent.redaction import scrub

#: What sending a request may raise before an answer: ``httpx``'s errors, and the
#: ``UnicodeEncodeError`` it lets through for a non-ASCII header value.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    httpx.InvalidURL,
    UnicodeEncodeError,
)

_MAX_REASON = 300
# How much past ``limit`` an error text is masked before it is cut: room for a whole secret
# that starts inside the part we keep.
_SECRET_ROOM = 4096


def _at(where: str, text: str) -> str:
    return f"{where}: {text}" if where else text


# ----------------------------------------------------------------------- before an answer


def timed_out(service: str, *, where: str = "", reason: str = "") -> NoAnswer:
    """The request went out and no answer came in time: it may have been carried out."""
    text = f"{where} timed out" if where else "timed out"
    return NoAnswer(text + (f" ({reason})" if reason else ""), service=service)


def broke_off(service: str, *, where: str = "", reason: str = "") -> NoAnswer:
    """The request reached the service and its answer broke off: like a timeout, it may have
    been carried out (and "cannot reach" would send the user looking at the network)."""
    text = "the connection dropped and the answer broke off" + (f" ({reason})" if reason else "")
    return NoAnswer(_at(where, text), service=service)


def unreachable(
    service: str, *, where: str = "", reason: str = "", name: str = "", url: str = ""
) -> Unavailable:
    """The service could not be reached: ``name`` (default "the service") ``at url``."""
    # Name the server: "Name or service not known" alone does not say which name.
    target = (name or "the service") + (f" at {url}" if url else "")
    text = f"cannot reach {target}" + (f" ({reason})" if reason else "")
    return Unavailable(_at(where, text), service=service)


def transport_reason(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """``exc``'s class and text, scrubbed and shortened: h11 quotes an illegal header value,
    which may be the key itself. A ``UnicodeEncodeError``'s text is left out (it quotes the
    value that cannot be encoded)."""
    detail = "" if isinstance(exc, UnicodeEncodeError) else str(exc)
    return scrub(f"{type(exc).__name__}: {detail}".rstrip(": "), secrets)[:_MAX_REASON]


def transport_error(
    exc: Exception,
    *,
    service: str,
    where: str = "",
    name: str = "",
    url: str = "",
    secrets: Iterable[str | None] = (),
) -> ServiceError:
    """Our error for a failure before an answer arrived (one of ``TRANSPORT_ERRORS``).

    ``where`` prefixes the message (``"POST /posts"``); ``name`` and ``url`` say whom we could
    not reach; ``secrets`` are the values the request carried, masked in any quoted form."""
    secrets = list(secrets)
    reason = transport_reason(exc, secrets)
    if isinstance(exc, httpx.TimeoutException):
        return timed_out(service, where=where, reason=reason)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return broke_off(service, where=where, reason=reason)
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        what = f"invalid {name} URL" if name else "invalid URL"
        return Rejected(_at(where, f"{what} ({reason})"), service=service)
    if isinstance(exc, httpx.LocalProtocolError | UnicodeEncodeError):
        # Our request cannot be sent as is (a key with a newline or a non-ASCII character):
        # sending it again will not help.
        return Rejected(
            _at(
                where,
                f"the request cannot be sent ({reason}); check the keys for stray characters",
            ),
            service=service,
        )
    if isinstance(exc, httpx.DecodingError):
        # The answer came whole but its Content-Encoding is a lie: not worth sending again.
        return BadResponse(_at(where, f"the answer cannot be decoded ({reason})"), service=service)
    return unreachable(
        service, where=where, reason=reason, name=name, url=scrub(url, secrets) if url else ""
    )


@contextmanager
def transport_errors(
    service: str,
    *,
    where: str = "",
    name: str = "",
    url: str = "",
    secrets: Iterable[str | None] = (),
) -> Iterator[None]:
    """Raise ``transport_error`` for any of ``TRANSPORT_ERRORS`` raised inside the block (the
    request and the reading of a streamed answer). The ``httpx`` error is not chained: its
    text may quote a key."""
    try:
        yield
    except TRANSPORT_ERRORS as exc:
        raise transport_error(
            exc, service=service, where=where, name=name, url=url, secrets=secrets
        ) from None


# ----------------------------------------------------------------------- an answer that says no


def status_text(status: int, detail: str = "") -> str:
    """``HTTP 404: detail`` (or ``HTTP 404`` without detail)."""
    return f"HTTP {status}" + (f": {detail}" if detail else "")


def error_for_status(
    status: int,
    message: str,
    *,
    service: str,
    retry_after: float | None = None,
    bucket: str | None = None,
) -> ServiceError:
    """Our error for a status that is not success; ``message`` is the whole text. A status
    outside the table (a 3xx not followed, a 200 where 201 was due) is ``Rejected``: that
    request, sent again, gets the same answer."""
    if status in (401, 403):
        return Unauthorized(message, service=service, status=status)
    if status == 429:
        return RateLimited(
            message, service=service, status=status, retry_after=retry_after, bucket=bucket
        )
    if status >= 500 or status == 408:
        return Unavailable(message, service=service, status=status)
    return Rejected(message, service=service, status=status)


def short_detail(body: Any, limit: int = 200, *, secrets: Iterable[str | None] = ()) -> str:
    """The human part of an error body (``detail``, ``error``, ``message``; a nested object's
    ``message`` or ``detail``), scrubbed and then shortened: servers echo requests back, and
    a request may hold a key."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = parse_json(body)
        except ValueError:  # not JSON, or nested too deep to walk: the text itself
            return scrub(body.strip()[: limit + _SECRET_ROOM], secrets)[:limit]
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
    return scrub(text.strip()[: limit + _SECRET_ROOM], secrets)[:limit]


def error_for_response(
    response: httpx.Response, *, service: str, now: datetime | None = None
) -> ServiceError:
    """Our error for a read ``response`` whose status says failure: ``HTTP 500: detail``, with
    ``Retry-After`` on a 429."""
    return error_for_status(
        response.status_code,
        status_text(response.status_code, short_detail(response.content)),
        service=service,
        retry_after=retry_after_of(response.headers, now=now),
    )
