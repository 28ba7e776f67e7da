"""Assembles one persona's agent from its config: the shared HTTP client, the Glimpse client,
the ledger (which takes the state-dir lock), the image router and the writers. Heavy SDKs are
imported by the backends that need them, only when configured.

Each runtime has its own ``Vitals`` and ``Tallies`` (``ops``): the shared HTTP client reports
every request to Glimpse into them, and every image backend of the router is wrapped to count
its attempts — so health and metrics are per persona, never module globals."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

import httpx

from glimpse_agent import __version__
from glimpse_agent.agent import Agent
from glimpse_agent.clock import Clock
from glimpse_agent.config import KEY_FILE_NAME, AgentConfig, LoadedAgent, secret_values
from glimpse_agent.errors import ConfigError, KeyRefused, NotVerified, Problem, Unauthorized
from glimpse_agent.glimpse import GlimpseClient, RateLimitInfo
from glimpse_agent.imaging import ProgressCallback, build_router
from glimpse_agent.ledger import AsyncLedger
from glimpse_agent.ops.observe import MeteredBackend, ObservedClient, glimpse_watcher, observe_here
from glimpse_agent.ops.tallies import Tallies
from glimpse_agent.ops.vitals import Vitals
from glimpse_agent.writing import build_writing


@dataclass
class Runtime:
    agent: Agent
    ledger: AsyncLedger
    glimpse: GlimpseClient
    http: httpx.AsyncClient
    _stack: AsyncExitStack
    vitals: Vitals
    tallies: Tallies

    async def start(self) -> None:
        """``agent.startup()`` (who am I on Glimpse; settle what a crash left), with a refused
        key said as ``KeyRefused``: where the key came from and how to fix it."""
        try:
            await self.agent.startup()
        except Unauthorized as exc:
            if exc.service != "glimpse" or isinstance(exc, KeyRefused):
                raise
            raise key_refused(self.agent.config, exc) from None

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


def key_refused(config: AgentConfig, exc: Unauthorized) -> KeyRefused:
    """The refusal of our key, saying where the key was read from and what to do; never the
    key itself."""
    if config.glimpse.api_key is not None:
        where = f"[glimpse] api_key (or its api_key_file) in {config.source}"
    else:
        where = f"the key file {config.state_dir / KEY_FILE_NAME} that `register` wrote"
    status = f"HTTP {exc.status}" if exc.status else "401/403"
    if isinstance(exc, NotVerified):
        fix = (
            "the account is not verified yet: run `glimpse-agent verify --code CODE` with the "
            "6-digit code mailed to the owner"
        )
    else:
        fix = (
            "check that this file (under systemd the LoadCredential= source, under Docker the "
            "secret) holds the key `glimpse-agent register` gave, whole and current; if the key "
            "is lost or revoked, register again (`glimpse-agent register --name NAME --email "
            "EMAIL --key-file PATH`, then `glimpse-agent verify --code CODE`)"
        )
    return KeyRefused(
        f"Glimpse refused the key ({status}: {exc.message}); it was read from {where}. Fix: "
        f"{fix}. Restarting will not help",
        status=exc.status,
    )


def describe(loaded: LoadedAgent) -> dict[str, object]:
    """What a start-up log line says about a config: version, files, enabled backends. Only
    names and hosts, never a secret."""
    config = loaded.config
    return {
        "version": __version__,
        "config": str(Path(config.source).resolve()),
        "persona": loaded.persona.name,
        "state_dir": str(config.state_dir),
        "glimpse_host": httpx.URL(config.glimpse.base_url).host,
        "image_backends": config.images.chain,
        "caption_sources": list(config.captions.order or []),
        "llm": config.llm.model if config.llm is not None else None,
        "listen": config.ops.listen,
    }


async def open_runtime(
    loaded: LoadedAgent,
    *,
    clock: Clock,
    dry_run: bool = False,
    state_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    vitals: Vitals | None = None,
    tallies: Tallies | None = None,
    http: httpx.AsyncClient | None = None,
) -> Runtime:
    """Open everything an agent needs; close it with ``await runtime.close()``. ``progress``
    receives the image backends' progress (ViewComfy with ``logs = true``), for a progress bar;
    without it the backend still logs a line every 25 %. ``vitals`` and ``tallies`` are fed
    by this runtime (fresh ones if not given). ``http``: a client shared with other personas (a
    fleet), used as is and left open; every adapter sends its own credentials and timeout with
    each request, so nothing of this persona's is kept in it, and its requests reach this
    persona's vitals through the task's context (``ops.observe.observe_here``). Default: a
    client of its own."""
    config, persona = loaded.config, loaded.persona
    key = require_key(config)
    state = state_dir or config.state_dir
    vitals = vitals or Vitals(clock)
    tallies = tallies or Tallies()
    stack = AsyncExitStack()
    try:
        # Opened (lock, read, repair) on the ledger's worker thread, like every later call.
        ledger = await AsyncLedger.open(state, clock=clock)
        stack.callback(ledger.ledger.close)
        stack.push_async_callback(ledger.aclose)
        watcher = glimpse_watcher(config.glimpse.base_url, vitals, tallies)
        if http is None:
            http = ObservedClient(
                observer=watcher,
                timeout=httpx.Timeout(config.glimpse.timeout, connect=10.0),
                follow_redirects=True,
            )
            stack.push_async_callback(http.aclose)
        else:
            observe_here(watcher)
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
        router.backends = [MeteredBackend(b, tallies) for b in router.backends]
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
        return Runtime(agent, ledger, glimpse, http, stack, vitals, tallies)
    except BaseException:
        await stack.aclose()
        raise
