"""Which flow UUID an endpoint name means: ``GET {base}[/lf/{langflow_id}]/api/v1/flows/``.

``/run`` takes a flow's endpoint name, but the image upload (``/files/upload/{flow_id}``) only
takes its UUID. When ``captions.langflow.flow`` is a name, :class:`FlowIdLookup` asks the flow
list once and remembers the answer for the process. A failed lookup is logged once, answers
None (the caption goes without its image) and is not tried again before a cool-down.

The list is a JSON array of flows (``id``, ``name``, ``endpoint_name``, ...) or, from a server
that paginates, a page ``{"items": [...], "page", "pages", ...}``: both are read, every page.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from glimpse_agent.clock import Clock, SystemClock
from glimpse_agent.errors import ServiceError
from glimpse_agent.http import safe as safe_http
from glimpse_agent.http.errors import status_text, transport_errors
from glimpse_agent.writing.langflow.parse import SERVICE, response_detail

LOOKUP_COOLDOWN = timedelta(hours=1)
MAX_PAGES = 50
HINT = "set captions.langflow.flow to the flow's UUID (Langflow shows it in the flow's API panel)"


def is_flow_id(value: str) -> bool:
    """Whether ``value`` is a UUID, the only flow identifier the upload endpoint takes."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def flows_in(body: Any) -> list[dict[str, Any]]:
    """The flow objects of a list answer or of a page answer; anything else is no flows."""
    items = body.get("items") if isinstance(body, dict) else body
    return [f for f in items if isinstance(f, dict)] if isinstance(items, list) else []


def next_page(body: Any) -> int | None:
    """The page after this one, when ``body`` is a page and more pages follow."""
    if not isinstance(body, dict):
        return None
    page, pages = body.get("page"), body.get("pages")
    if isinstance(page, int) and isinstance(pages, int) and page < pages:
        return page + 1
    return None


def flow_id_for(flows: list[dict[str, Any]], wanted: str) -> str | None:
    """The UUID of the flow whose ``endpoint_name`` is ``wanted``, else whose ``name`` is;
    case-sensitive, as Langflow matches endpoint names."""
    for key in ("endpoint_name", "name"):
        for flow in flows:
            ident = flow.get("id")
            if flow.get(key) == wanted and isinstance(ident, str) and is_flow_id(ident):
                return ident
    return None


class LookupFailed(Exception):
    """Why the flow list did not give us the flow's UUID (internal to this module)."""


class FlowIdLookup:
    """The configured flow's UUID, for the upload endpoint.

    ``await flow_id()`` answers the UUID — ``flow`` itself when it is one, with no request —
    or None. The list is asked at most once while concurrent captions wait for that one
    answer; a found UUID is kept for the life of the object. After a failure (refused, not
    found, unreachable) one warning names the flow and the fix, and None comes back without
    a request until ``cooldown`` has passed on ``clock``."""

    def __init__(
        self,
        flow: str,
        root: str,
        *,
        http: httpx.AsyncClient,
        headers: Callable[[], dict[str, str]],
        timeout: httpx.Timeout,
        log: Any,
        clock: Clock | None = None,
        cooldown: timedelta = LOOKUP_COOLDOWN,
    ) -> None:
        self.flow = flow
        self.url = f"{root}/flows/"
        self.http = http
        self.headers = headers
        self.timeout = timeout
        self.log = log
        self.clock: Clock = clock or SystemClock()
        self.cooldown = cooldown
        self._found: str | None = flow if is_flow_id(flow) else None
        self._retry_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def flow_id(self) -> str | None:
        # One lock for every caller: concurrent captions wait for the one lookup in flight.
        async with self._lock:
            cooling = self._retry_at is not None and self.clock.now() < self._retry_at
            if self._found is None and not cooling:
                self._found = await self._resolve()
            return self._found

    async def _resolve(self) -> str | None:
        try:
            found = await self._look_up()
        except LookupFailed as exc:
            self._retry_at = self.clock.now() + self.cooldown
            self.log.warning(
                "langflow.flow_lookup_failed",
                flow=self.flow,
                error=str(exc),
                hint=HINT,
                retry_in_s=self.cooldown.total_seconds(),
                effect="captions are written without the image",
            )
            return None
        self.log.info("langflow.flow_resolved", flow=self.flow, flow_id=found)
        return found

    async def _look_up(self) -> str:
        # header_flows: ids and names without each flow's whole graph (can be megabytes).
        params: dict[str, str | int] = {"header_flows": "true"}
        flows: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            body = await self._get(params)
            flows += flows_in(body)
            page = next_page(body)
            if page is None:
                break
            size = body.get("size") if isinstance(body, dict) else None
            params = {**params, "get_all": "false", "page": page}
            if isinstance(size, int):
                params["size"] = size
        found = flow_id_for(flows, self.flow)
        if found is None:
            raise LookupFailed(
                f"no flow with endpoint name or name {self.flow!r} among the "
                f"{len(flows)} flows this key can see"
            )
        return found

    async def _get(self, params: dict[str, str | int]) -> Any:
        try:
            with transport_errors(SERVICE, name="Langflow", secrets=self.headers().values()):
                response = await safe_http.send(
                    self.http,
                    "GET",
                    self.url,
                    service=SERVICE,
                    params=params,
                    headers=self.headers(),
                    timeout=self.timeout,
                )
        except ServiceError as exc:  # unreachable, a redirect elsewhere, an oversized answer
            raise LookupFailed(f"cannot list the flows: {exc}") from None
        if response.status_code != 200:
            status = status_text(response.status_code, response_detail(response))
            raise LookupFailed(f"GET {self.url} answered {status}")
        try:
            return response.json()
        except ValueError:
            raise LookupFailed(f"GET {self.url} answered something that is not JSON") from None
