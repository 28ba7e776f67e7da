"""`glimpse-agent once --post | --engage`: one action now, then exit.

A person usually runs it at a terminal: there a slow image (ViewComfy with ``logs = true``)
draws a progress bar on stderr. Off a terminal (cron, a pipe) stderr gets only the log, where
the backend writes a line every 25 %, as in the daemon.
"""

from __future__ import annotations

import argparse
import sys

from glimpse_agent.agent import Outcome
from glimpse_agent.clock import SystemClock
from glimpse_agent.commands._common import load, setup_logging
from glimpse_agent.imaging import ProgressBar
from glimpse_agent.logs import get_logger
from glimpse_agent.run.assemble import Runtime, describe, open_runtime
from glimpse_agent.run.statedir import check_state_dir


async def act(runtime: Runtime, *, post: bool) -> Outcome:
    """Start (a refused key is ``KeyRefused``, exit 5), then one post or one engagement
    session, counted in the runtime's tallies as the daemon counts its slots."""
    await runtime.start()
    outcome = await (runtime.agent.post() if post else runtime.agent.engage())
    runtime.tallies.record_outcome(outcome)
    return outcome


async def main(args: argparse.Namespace) -> int:
    loaded = load(args)
    get_logger("glimpse_agent.once", persona=loaded.persona.name).info(
        "starting", command="once", dry_run=bool(args.dry_run), **describe(loaded)
    )
    check_state_dir(loaded.config.state_dir, config_file=loaded.config.source)
    bar = ProgressBar(sys.stderr)  # draws nothing unless stderr is a terminal
    if bar.enabled:
        # Log lines written while the bar runs take its place instead of landing at its end.
        setup_logging(args, loaded.config.log_level, stream=bar.shared_stream())
    async with await open_runtime(
        loaded,
        clock=SystemClock(),
        dry_run=args.dry_run,
        progress=bar if bar.enabled else None,
    ) as runtime:
        try:
            outcome = await act(runtime, post=bool(args.post))
        finally:
            bar.finish()  # whatever comes next (result, error) starts on its own line
    if outcome.kind == "post":
        print(
            f"post: {'ok' if outcome.ok else 'failed'}"
            + (f" ({outcome.post_id})" if outcome.post_id else "")
            + (f" - {outcome.detail}" if outcome.detail else ""),
            file=sys.stdout,
        )
    else:
        print("engage: " + ", ".join(f"{k} {v}" for k, v in outcome.counts.items()))
    return 0 if outcome.ok else 1
