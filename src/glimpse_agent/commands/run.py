from __future__ import annotations

import argparse
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime

from glimpse_agent.clock import SystemClock
from glimpse_agent.commands._common import load
from glimpse_agent.errors import ConfigError, Problem
from glimpse_agent.ledger.storage import ensure_state_dir
from glimpse_agent.planner import DayPlan, Slot
from glimpse_agent.run.assemble import Runtime, open_runtime
from glimpse_agent.run.daemon import Daemon
from glimpse_agent.run.deadlines import action_deadlines


class _OpeningAgent:
    """The agent, opened (ledger lock, read, repair) as the first step of the daemon's start-up
    rather than before it: a state directory that is full or read-only at a restart is then
    waited for by the daemon, which tells systemd so, instead of ending the process."""

    def __init__(self, opener: Callable[[], Awaitable[Runtime]]) -> None:
        self._opener = opener
        self.runtime: Runtime | None = None

    async def startup(self) -> None:
        if self.runtime is None:
            self.runtime = await self._opener()
        await self.runtime.agent.startup()

    def _agent(self) -> Runtime:
        assert self.runtime is not None, "the daemon calls startup() first"
        return self.runtime

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        return await self._agent().agent.plan_day(now)

    async def run_slot(self, slot: Slot) -> object:
        return await self._agent().agent.run_slot(slot)

    async def heartbeat(self) -> None:
        await self._agent().agent.heartbeat()


async def main(args: argparse.Namespace) -> int:
    configs = args.config if isinstance(args.config, list) else [args.config]
    configs = [c for c in configs if c]
    if getattr(args, "fleet", None) or len(configs) > 1:
        from glimpse_agent.commands.fleet import run_fleet

        return await run_fleet(args, configs)
    if not configs:
        raise ConfigError(
            [Problem("command line", "-c", "give -c AGENT_TOML (or several, or --fleet DIR)")]
        )
    args.config = configs[0]
    loaded = load(args)
    clock = SystemClock()
    daemon_cfg = loaded.config.daemon
    deadlines = action_deadlines(loaded.config)
    with contextlib.suppress(OSError):  # for the heartbeat file; the ledger open says why not
        ensure_state_dir(loaded.config.state_dir)
    agent = _OpeningAgent(lambda: open_runtime(loaded, clock=clock, dry_run=args.dry_run))
    try:
        daemon = Daemon(
            agent,
            clock=clock,
            heartbeat_file=loaded.config.state_dir / "heartbeat",
            heartbeat_minutes=daemon_cfg.heartbeat_minutes,
            misfire_grace_minutes=daemon_cfg.misfire_grace_minutes,
            stop_timeout_seconds=daemon_cfg.stop_timeout_seconds,
            deadline_for=deadlines.for_kind,
        )
        return await daemon.run()
    finally:
        if agent.runtime is not None:
            await agent.runtime.close()
