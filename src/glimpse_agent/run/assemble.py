"""Assembles one persona's agent from its config: the shared HTTP client, the Glimpse client,
the ledger (which takes the state-dir lock), the image router and the writers. Heavy SDKs are
imported by the backends that need them, only when configured."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

import httpx

from glimpse_agent.agent import Agent
from glimpse_agent.clock import Clock
from glimpse_agent.config import AgentConfig, LoadedAgent, secret_values
from glimpse_agent.errors import ConfigError, Problem
from glimpse_agent.glimpse import GlimpseClient, RateLimitInfo
from glimpse_agent.imaging import ProgressCallback, build_router
from glimpse_agent.ledger import AsyncLedger
from glimpse_agent.writing import build_writing


@dataclass
class Runtime:
    agent: Agent
    ledger: AsyncLedger
    glimpse: GlimpseClient
    http: httpx.AsyncClient
    _stack: AsyncExitStack

    async def close(self) -> None:
        await self._stack.aclose()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def require_key(config: AgentConfig) -> str:
    key = config.glimpse_key()
    if not key:
        raise ConfigError(
            [
                Problem(
                    str(config.source),
                    "glimpse.api_key",
                    "no Glimpse key: set api_key (or api_key_file), or run "
                    "`glimpse-agent register` to store one in "
                    f"{config.state_dir}",
                )
            ]
        )
    return key


async def open_runtime(
    loaded: LoadedAgent,
    *,
    clock: Clock,
    dry_run: bool = False,
    state_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    http: httpx.AsyncClient | None = None,
) -> Runtime:
    """Open everything an agent needs; close it with ``await runtime.close()``. ``progress``
    receives the image backends' progress (ViewComfy with ``logs = true``), for a progress bar;
    without it the backend still logs a line every 25 %. ``http``: a client shared with other
    personas (a fleet), used as is and left open; every adapter sends its own credentials and
    timeout with each request, so nothing of this persona's is kept in it. Default: a client of
    its own."""
    config, persona = loaded.config, loaded.persona
    key = require_key(config)
    state = state_dir or config.state_dir
    stack = AsyncExitStack()
    try:
        # Opened (lock, read, repair) on the ledger's worker thread, like every later call.
        ledger = await AsyncLedger.open(state, clock=clock)
        stack.callback(ledger.ledger.close)
        stack.push_async_callback(ledger.aclose)
        if http is None:
            http = httpx.AsyncClient(
                timeout=httpx.Timeout(config.glimpse.timeout, connect=10.0), follow_redirects=True
            )
            stack.push_async_callback(http.aclose)
        inbox: list[tuple[RateLimitInfo, datetime]] = []
        glimpse = GlimpseClient(
            config.glimpse.base_url,
            key,
            http=http,
            timeout=config.glimpse.timeout,
            clock=clock,
            on_rate_limit=lambda info: inbox.append((info, clock.now())),
        )
        router = build_router(
            config,
            persona,
            spend=ledger.spend_book(),
            clock=clock,
            state_dir=state,
            http=http,
            glimpse=glimpse,
            progress=progress,
        )
        stack.push_async_callback(router.aclose)
        writing = build_writing(
            config, persona, glimpse=glimpse, http=http, secrets=secret_values(config), clock=clock
        )
        stack.push_async_callback(writing.aclose)
        agent = Agent(
            config,
            persona,
            glimpse=glimpse,
            ledger=ledger,
            router=router,
            writing=writing,
            clock=clock,
            dry_run=dry_run,
            rate_limit_inbox=inbox,
        )
        return Runtime(agent, ledger, glimpse, http, stack)
    except BaseException:
        await stack.aclose()
        raise
