"""The optional ``[ops] listen`` server, on the daemon's own event loop: ``GET /metrics`` (the
Prometheus exposition, rendered by ``prometheus_client`` from a registry of our own, in the
format the scraper's ``Accept`` asks for) and ``GET /healthz`` (200 healthy / 503 not, with the
one-line reason per persona as JSON; a fleet gives its own verdict, ``ops.fleet_health``).
Anything else is 404; a method other than GET or HEAD is
405. One request per connection; a client that sends no complete request head within
``READ_SECONDS`` (or a head over ``MAX_HEAD_BYTES``) is dropped.

It is off unless configured: no port is opened, and ``prometheus_client`` is not imported.
Bind it to loopback (the default example) or a private interface: it has no authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from glimpse_agent.logs import get_logger
from glimpse_agent.ops.metrics import PersonaFeed, registry_for

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

READ_SECONDS = 5.0
MAX_HEAD_BYTES = 16 * 1024
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class OpsListener:
    """Serves ``/healthz`` and ``/metrics`` for ``feeds`` (read at each request: a persona
    added to the list later is served too). ``health``, when given, answers ``/healthz``
    instead of the personas' verdicts: (healthy, the JSON document)."""

    def __init__(
        self,
        host: str,
        port: int,
        feeds: list[PersonaFeed],
        *,
        health: Callable[[], tuple[bool, dict[str, Any]]] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.feeds = feeds
        self.health = health
        self.log = get_logger("glimpse_agent.ops.listener")
        self._server: asyncio.Server | None = None
        self._registry: CollectorRegistry | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port when 0 was asked for)."""
        if self._server is None or not self._server.sockets:
            return self.host, self.port
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def start(self) -> OpsListener:
        """Bind and serve; raises OSError if the address cannot be had."""
        self._registry = registry_for(self.feeds)
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_HEAD_BYTES
        )
        host, port = self.address
        self.log.info("ops_listening", address=f"{host}:{port}", paths=["/healthz", "/metrics"])
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> OpsListener:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ one request

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_SECONDS)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            status, headers, body = await self._answer(head.decode("latin-1"))
            method = head.split(b" ", 1)[0]
            writer.write(_response(status, headers, body, send_body=method != b"HEAD"))
            await writer.drain()
        except (ConnectionError, OSError):
            return
        except Exception as exc:  # a bug here must never take the daemon down
            self.log.warning("ops_request_failed", error=str(exc), error_type=type(exc).__name__)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, head: str) -> tuple[int, dict[str, str], bytes]:
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return 405, _TEXT, b"expected: GET /healthz or GET /metrics\n"
        method, target, _ = parts
        path = target.split("?", 1)[0]
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in lines[1:] if ":" in line)
        }
        if path not in ("/metrics", "/healthz"):
            return 404, _TEXT, b"not found: try /healthz or /metrics\n"
        if method not in ("GET", "HEAD"):
            return 405, {**_TEXT, "Allow": "GET, HEAD"}, b"method not allowed\n"
        if path == "/healthz":
            return self._health()
        return await self._metrics(headers.get("accept", ""))

    def _health(self) -> tuple[int, dict[str, str], bytes]:
        if self.health is not None:
            healthy, answer = self.health()
            body = (json.dumps(answer, default=str) + "\n").encode()
            return (200 if healthy else 503), {"Content-Type": "application/json"}, body
        verdicts = [(feed.persona, feed.verdict()) for feed in self.feeds]
        healthy = all(v.healthy for _, v in verdicts)
        doc: dict[str, Any] = {
            "healthy": healthy,
            "reason": "; ".join(f"{p}: {v.line}" for p, v in verdicts if v.healthy is healthy),
            "personas": [
                {"persona": p, "healthy": v.healthy, "reason": v.reason} for p, v in verdicts
            ],
        }
        body = (json.dumps(doc) + "\n").encode()
        return (200 if healthy else 503), {"Content-Type": "application/json"}, body

    async def _metrics(self, accept: str) -> tuple[int, dict[str, str], bytes]:
        from prometheus_client.exposition import choose_encoder

        # Every persona's ledger at once (each on its own thread): a fleet's scrape waits for
        # the slowest, not for the sum.
        await asyncio.gather(*(feed.refresh() for feed in list(self.feeds)))
        assert self._registry is not None
        encoder, content_type = choose_encoder(accept)
        return 200, {"Content-Type": content_type}, encoder(self._registry)


_TEXT = {"Content-Type": "text/plain; charset=utf-8"}


def _response(status: int, headers: dict[str, str], body: bytes, *, send_body: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + (body if send_body else b"")
