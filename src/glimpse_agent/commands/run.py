from __future__ import annotations

import argparse

from glimpse_agent.clock import SystemClock
from glimpse_agent.commands._common import load
from glimpse_agent.run.assemble import open_runtime
from glimpse_agent.run.daemon import Daemon


async def main(args: argparse.Namespace) -> int:
    loaded = load(args)
    clock = SystemClock()
    daemon_cfg = loaded.config.daemon
    async with await open_runtime(loaded, clock=clock, dry_run=args.dry_run) as runtime:
        daemon = Daemon(
            runtime.agent,
            clock=clock,
            heartbeat_file=loaded.config.state_dir / "heartbeat",
            heartbeat_minutes=daemon_cfg.heartbeat_minutes,
            misfire_grace_minutes=daemon_cfg.misfire_grace_minutes,
            stop_timeout_seconds=daemon_cfg.stop_timeout_seconds,
        )
        return await daemon.run()
