"""The one translation of HTTP failures (``glimpse_agent.http.errors``) and the one reader of
``Retry-After`` (``glimpse_agent.http.retry_after``)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from glimpse_agent.errors import (
    BadResponse,
    NoAnswer,
    RateLimited,
    Rejected,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.http.errors import error_for_response, error_for_status, transport_error
from glimpse_agent.http.retry_after import parse_retry_after, seconds_until
from glimpse_agent.redaction import scrub

NOW = datetime(2025, 3, 3, 9, tzinfo=UTC)
REQUEST = httpx.Request("GET", "http://svc.test/x")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ReadTimeout("slow", request=REQUEST), NoAnswer),
        (httpx.RemoteProtocolError("peer closed", request=REQUEST), NoAnswer),
        (httpx.ReadError("reset", request=REQUEST), NoAnswer),
        (httpx.ConnectError("refused", request=REQUEST), Unavailable),
        (httpx.UnsupportedProtocol("ftp", request=REQUEST), Rejected),
        (httpx.InvalidURL("bad"), Rejected),
        (httpx.LocalProtocolError("Illegal header value"), Rejected),
        (UnicodeEncodeError("ascii", "k\u00e9y", 1, 2, "no"), Rejected),
        (httpx.DecodingError("bad gzip", request=REQUEST), BadResponse),
    ],
)
def test_transport_failures_have_one_translation(exc: Exception, kind: type) -> None:
    error = transport_error(exc, service="svc", where="GET /x")
    assert type(error) is kind and error.service == "svc"
    assert str(error).startswith("svc: GET /x")


def test_transport_text_masks_the_request_secrets_in_any_quoted_form() -> None:
    key = "s3cret\nvalue42"
    exc = httpx.LocalProtocolError(f"Illegal header value {('Bearer ' + key).encode()!r}")
    error = transport_error(exc, service="svc", secrets=[key])
    assert "s3cret" not in str(error)


def test_unreachable_names_the_server() -> None:
    exc = httpx.ConnectError("Name or service not known", request=REQUEST)
    error = transport_error(exc, service="glimpse", name="Glimpse", url="http://u:pw99@g.test")
    assert "cannot reach Glimpse at http://u:***@g.test (ConnectError" in str(error)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, Unauthorized),
        (403, Unauthorized),
        (429, RateLimited),
        (408, Unavailable),
        (500, Unavailable),
        (503, Unavailable),
        (400, Rejected),
        (404, Rejected),
        (302, Rejected),
    ],
)
def test_statuses_have_one_translation(status: int, kind: type[ServiceError]) -> None:
    assert type(error_for_status(status, "m", service="svc")) is kind


def test_a_response_error_carries_detail_and_retry_after() -> None:
    response = httpx.Response(
        429, headers={"Retry-After": "Mon, 03 Mar 2025 09:01:00 GMT"}, json={"detail": "slow"}
    )
    error = error_for_response(response, service="svc", now=NOW)
    assert isinstance(error, RateLimited) and error.retry_after == 60
    assert error.message == "HTTP 429: slow"


def test_retry_after_forms() -> None:
    assert parse_retry_after("120", now=NOW) == 120
    assert parse_retry_after("2025-03-03T09:00:30Z", now=NOW) == 30
    assert parse_retry_after("", now=NOW) is None
    assert seconds_until("1741000000", now=NOW) == 7600  # epoch seconds: 11:06:40
    assert seconds_until("1740990000", now=NOW) == 0.0  # an epoch in the past


def test_scrub_masks_every_quoted_form_and_key_shapes() -> None:
    secret = "p\u00e4ss\nword99"
    text = f"{secret} {secret!r} {secret.encode()!r} glm_abcdef123"
    out = scrub(text, [secret])
    assert "word99" not in out and "glm_abcdef123" not in out
