"""One request to Glimpse: auth header, timing, the debug log line, the ``X-RateLimit-*``
bookkeeping, and translation of every failure into our errors (Glimpse's error bodies in
``_errors``, the rest in ``glimpse_agent.http.errors``). Nothing ``httpx`` raises gets past
``GlimpseHttp.send``. Redirects to another host are refused, every request ends within its
deadline and bodies are read with a size cap (``glimpse_agent.http.safe``), and parsed with a
depth limit (``glimpse_agent.http.bodies``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from glimpse_agent.clock import Clock
from glimpse_agent.errors import BadResponse, ServiceError
from glimpse_agent.glimpse._errors import (
    SERVICE,
    error_for_not_done,
    error_for_response,
    not_done,
)
from glimpse_agent.glimpse.models import ITEM_ERRORS
from glimpse_agent.glimpse.pages import Page, build_page
from glimpse_agent.glimpse.ratelimit import RateLimitInfo, bucket_for, parse_rate_limit
from glimpse_agent.http import safe as safe_http
from glimpse_agent.http.bodies import JsonTooDeep, parse_json
from glimpse_agent.http.errors import TRANSPORT_ERRORS, transport_error
from glimpse_agent.logs import get_logger

M = TypeVar("M", bound=BaseModel)
RateLimitCallback = Callable[[RateLimitInfo], None]
Params = Mapping[str, str | int | None]

#: The largest Glimpse answer read. Its biggest legitimate answers are pages of at most a
#: hundred posts of a few kB each (well under 1 MB), and no image ever comes back inline; but
#: JSON of many small objects grows about tenfold once parsed into Python objects, so the
#: 128 MB cap meant for images (``safe.MAX_BODY_BYTES``) would let one list answer take the
#: process past a gigabyte. 4 MB leaves room for long captions and parses into tens of MB.
MAX_JSON_BYTES = 4 * 1024 * 1024


class GlimpseHttp:
    """Sends requests relative to ``base_url`` and remembers the last rate-limit headers of
    each bucket in ``rate_limits``. Secrets never reach a log line or an error message."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        clock: Clock,
        on_rate_limit: RateLimitCallback | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key.strip() if api_key else None
        self.http = http
        self.timeout = timeout
        self.clock = clock
        self.on_rate_limit = on_rate_limit
        #: Seconds within which every request ends, answered or not (``safe.deadline_for``).
        self.deadline = safe_http.deadline_for(timeout)
        self.rate_limits: dict[str, RateLimitInfo] = {}
        self.last_rate_limit: RateLimitInfo | None = None
        self.log = get_logger("glimpse_agent.glimpse")

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        files: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str | None] = (),
    ) -> httpx.Response:
        """The response if its status is 2xx; otherwise raises our error for it."""
        secrets = (self.api_key, *secrets)
        sent_headers = {"Accept": "application/json"}
        if self.api_key:
            sent_headers["Authorization"] = f"Bearer {self.api_key}"
        sent_headers.update(headers or {})
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        bucket = bucket_for(method, path)
        started = time.monotonic()
        try:
            response = await safe_http.send(
                self.http,
                method,
                self.base_url + path,
                service=SERVICE,
                params=query or None,
                json=json,
                files=files,
                data=data,
                headers=sent_headers,
                timeout=self.timeout,
                deadline=self.deadline,
                max_bytes=MAX_JSON_BYTES,
                where=f"{method} {path}",
            )
        except ServiceError as exc:  # a passed deadline, a redirect elsewhere, a huge body
            self._log_failed(method, path, started, exc)
            raise
        except TRANSPORT_ERRORS as exc:
            self._log_failed(method, path, started, exc)
            raise transport_error(
                exc,
                service=SERVICE,
                where=f"{method} {path}",
                name="Glimpse",
                url=self.base_url,
                secrets=secrets,
            ) from None
        now = self.clock.now()
        info = parse_rate_limit(response.headers, bucket=bucket, now=now)
        if info is not None:
            self._remember(info)
        self.log.debug(
            "glimpse.request",
            method=method,
            path=path,
            status=response.status_code,
            duration_ms=_ms(started),
            bucket=bucket,
            remaining=None if info is None else info.remaining,
        )
        if response.is_success:
            return response
        raise error_for_response(
            response, method=method, path=path, bucket=bucket, now=now, secrets=secrets
        )

    def _log_failed(self, method: str, path: str, started: float, exc: Exception) -> None:
        self.log.debug(
            "glimpse.request",
            method=method,
            path=path,
            status=getattr(exc, "status", None),
            duration_ms=_ms(started),
            error=type(exc).__name__,
        )

    def _remember(self, info: RateLimitInfo) -> None:
        self.rate_limits[info.bucket] = info
        self.last_rate_limit = info
        if self.on_rate_limit is not None:
            try:
                self.on_rate_limit(info)
            except Exception as exc:  # a bookkeeping hook must not fail the request
                self.log.warning("glimpse.rate_limit_callback_failed", error=type(exc).__name__)

    async def body(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON body of a 2xx answer (``None`` when empty). A 2xx whose body says
        the request was not carried out (``{"success": false}``) raises our error for it: a
        like the server did not make must not be counted as made."""
        response = await self.send(method, path, **kwargs)
        body = decode(response, method=method, path=path)
        if not_done(body):
            raise error_for_not_done(
                response.status_code,
                body,
                method=method,
                path=path,
                secrets=(self.api_key, *kwargs.get("secrets", ())),
            )
        return body

    async def model(
        self,
        model: type[M],
        method: str,
        path: str,
        envelope: tuple[str, ...] = ("data",),
        **kwargs: Any,
    ) -> M:
        """The answer as ``model``; ``envelope`` names keys the object may be wrapped under."""
        body = await self.body(method, path, **kwargs)
        return parse_model(model, body, method=method, path=path, envelope=envelope)

    async def page(self, model: type[M], path: str, *, params: Params, **kwargs: Any) -> Page[M]:
        """A GET of a paginated list of ``model``."""
        response = await self.send("GET", path, params=params, **kwargs)
        body = decode(response, method="GET", path=path)
        limit = params.get("limit")
        try:
            page = build_page(
                model, body, response.links, limit=limit if isinstance(limit, int) else None
            )
        except ValueError as exc:
            raise BadResponse(
                f"GET {path}: {exc}", service=SERVICE, status=response.status_code
            ) from None
        if page.skipped:
            # One line per page, not per item: a page of garbage must not flood the log.
            self.log.warning(
                "glimpse.items_skipped",
                path=path,
                model=model.__name__,
                skipped=page.skipped,
                kept=len(page.items),
                first_problem=page.problem,
            )
        return page


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def decode(response: httpx.Response, *, method: str, path: str) -> Any:
    """JSON of a 2xx response; ``None`` for an empty body; ``BadResponse`` for anything else
    (an HTML error page, invalid UTF-8, JSON nested deeper than ``bodies.MAX_JSON_DEPTH``)."""
    if not response.content.strip():
        return None
    try:
        return parse_json(response.content)
    except JsonTooDeep as exc:
        raise BadResponse(
            f"{method} {path} -> HTTP {response.status_code}: {exc}",
            service=SERVICE,
            status=response.status_code,
        ) from None
    except ValueError:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise BadResponse(
            f"{method} {path} -> HTTP {response.status_code}: not JSON ({kind[:60]})",
            service=SERVICE,
            status=response.status_code,
        ) from None


def parse_model(
    model: type[M], body: Any, *, method: str, path: str, envelope: tuple[str, ...]
) -> M:
    """``body`` (or the object under one of ``envelope``) as ``model``, else ``BadResponse``.

    The message names where validation failed but never quotes the input: it may hold a key.
    """
    if isinstance(body, dict):
        for key in envelope:
            if isinstance(body.get(key), dict):
                body = body[key]
                break
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadResponse(
            f"{method} {path}: unexpected response for {model.__name__} "
            f"({exc.error_count()} problem(s), first: {where}: {first['type']})",
            service=SERVICE,
        ) from None
    except ITEM_ERRORS as exc:  # a number no datetime or int can hold
        raise BadResponse(
            f"{method} {path}: unexpected response for {model.__name__} ({type(exc).__name__})",
            service=SERVICE,
        ) from None
