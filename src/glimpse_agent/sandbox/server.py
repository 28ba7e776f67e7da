"""Run ASGI apps on loopback ports in background threads.

    with LoopbackServer(app) as server:
        httpx.get(server.url + "/health")

    with LoopbackServers({"glif": glif_app, "langflow": langflow_app}) as servers:
        httpx.get(servers.url("glif") + "/health")

The port is picked by the OS (bind to port 0) so parallel tests never collide.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import uvicorn


class Startable(ABC):
    """Something that is started and stopped: ``with it:`` starts it and stops it when the
    block ends, however it ends."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LoopbackServer(Startable):
    """An ASGI app served over real HTTP on 127.0.0.1 from a daemon thread."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1") -> None:
        self.app = app
        self.host = host
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and
        # without it every loopback request pays ~40 ms of Nagle/delayed-ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=f"loopback-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"emulator on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()


class LoopbackServers(Startable):
    """Several apps, each on its own loopback port, started and stopped together."""

    def __init__(self, apps: Mapping[str, Any]) -> None:
        self.servers: dict[str, LoopbackServer] = {
            name: LoopbackServer(app) for name, app in apps.items()
        }

    def url(self, name: str) -> str:
        return self.servers[name].url

    def start(self) -> Self:
        """Start every server; if one fails to start, stop those already running."""
        started: list[LoopbackServer] = []
        try:
            for server in self.servers.values():
                started.append(server.start())
        except BaseException:
            for server in started:
                server.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
