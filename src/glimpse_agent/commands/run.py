"""`glimpse-agent run -c agent.toml`: the daemon, in the foreground.

Before anything else: one start-up line (version, config, enabled backends) and the state
directory checked for this user (exit 3 naming path, uid, owner and fix). Then the daemon
opens the ledger, says ``READY=1``, and asks Glimpse; with ``[ops] listen`` the ``/healthz`` and
``/metrics`` listener serves this persona's runtime from the start.
"""

from __future__ import annotations

import argparse
import errno
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from glimpse_agent.clock import Clock, SystemClock
from glimpse_agent.commands._common import load
from glimpse_agent.config import LoadedAgent
from glimpse_agent.config.models import listen_address
from glimpse_agent.errors import ConfigError, Problem
from glimpse_agent.logs import get_logger
from glimpse_agent.ops.metrics import PersonaFeed
from glimpse_agent.ops.tallies import Tallies
from glimpse_agent.ops.vitals import Vitals
from glimpse_agent.run.assemble import describe, open_runtime
from glimpse_agent.run.daemon import Daemon
from glimpse_agent.run.deadlines import action_deadlines
from glimpse_agent.run.opening import OpeningAgent
from glimpse_agent.run.statedir import check_state_dir

if TYPE_CHECKING:  # the listener (and prometheus_client) load only when configured
    from glimpse_agent.ops.listener import OpsListener


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
    config = loaded.config
    log = get_logger("glimpse_agent.run", persona=loaded.persona.name)
    log.info("starting", command="run", dry_run=bool(args.dry_run), **describe(loaded))
    check_state_dir(config.state_dir, config_file=config.source)
    clock = SystemClock()
    vitals, tallies = Vitals(clock), Tallies()
    agent = OpeningAgent(
        loaded,
        lambda: open_runtime(
            loaded, clock=clock, dry_run=args.dry_run, vitals=vitals, tallies=tallies
        ),
    )
    daemon_cfg = config.daemon
    daemon = Daemon(
        agent,
        clock=clock,
        heartbeat_file=config.state_dir / "heartbeat",
        heartbeat_minutes=daemon_cfg.heartbeat_minutes,
        misfire_grace_minutes=daemon_cfg.misfire_grace_minutes,
        stop_timeout_seconds=daemon_cfg.stop_timeout_seconds,
        deadline_for=action_deadlines(config).for_kind,
        open_state=agent.open,
        persona=loaded.persona.name,
        vitals=vitals,
        tallies=tallies,
    )
    listener = await _listen(loaded, daemon, agent, clock, getattr(args, "listen", None))
    try:
        return await daemon.run()
    finally:
        if listener is not None:
            await listener.aclose()
        if agent.runtime is not None:
            await agent.runtime.close()


async def _listen(
    loaded: LoadedAgent,
    daemon: Daemon,
    agent: OpeningAgent,
    clock: Clock,
    flag: str | None = None,
) -> OpsListener | None:
    """The ``[ops] listen`` server for this persona (``--listen`` wins), or None when not
    configured. An address that cannot be had is a configuration problem (exit 2), named by
    its key."""
    config = loaded.config
    address = listen_address(flag) if flag else config.ops.address
    if address is None:
        return None
    from glimpse_agent.ops.listener import OpsListener

    async def read_ledger() -> dict[str, Any] | None:
        return await agent.ledger_view(clock)

    feed = PersonaFeed(
        persona=loaded.persona.name,
        vitals=daemon.vitals,
        tallies=daemon.tallies,
        clock=clock,
        patience=timedelta(minutes=config.ops.unhealthy_after_minutes),
        # Until the ledger is open there is nothing to read: its families stay empty.
        read_ledger=read_ledger,
        heartbeat=daemon.beat,
    )
    listener = OpsListener(address[0], address[1], [feed])
    try:
        return await listener.start()
    except OSError as exc:
        why = exc.strerror or str(exc)
        hint = " (another process, or another persona, uses it)" if exc.errno in _BUSY else ""
        raise ConfigError(
            [
                Problem(
                    "command line" if flag else str(config.source),
                    "--listen" if flag else "ops.listen",
                    f"cannot listen on {flag or config.ops.listen}: {why}{hint}",
                )
            ]
        ) from None


_BUSY = frozenset({errno.EADDRINUSE})
