from __future__ import annotations

import argparse
import sys

from glimpse_agent.clock import SystemClock
from glimpse_agent.commands._common import load
from glimpse_agent.runtime import open_runtime


async def main(args: argparse.Namespace) -> int:
    loaded = load(args)
    async with await open_runtime(loaded, clock=SystemClock(), dry_run=args.dry_run) as runtime:
        await runtime.agent.startup()
        outcome = await (runtime.agent.post() if args.post else runtime.agent.engage())
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
