"""`glimpse-agent simulate`: the real planner and agent on a simulated clock, against the
endpoints in agent.toml, as fast as they answer. Meant for emulators or staging servers: a real
Glimpse counts its daily limits on its own clock, so a simulated week against it hits them."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

from glimpse_agent.clock import SimulatedClock
from glimpse_agent.commands._common import load
from glimpse_agent.run.assemble import open_runtime
from glimpse_agent.run.simulation import Simulation


async def main(args: argparse.Namespace) -> int:
    loaded = load(args)
    if args.days < 1 or args.days > 366:
        print("glimpse-agent: --days must be between 1 and 366")
        return 2
    first = date.fromisoformat(args.start) if args.start else datetime.now(UTC).date()
    clock = SimulatedClock(datetime(first.year, first.month, first.day, tzinfo=UTC))
    async with await open_runtime(loaded, clock=clock) as runtime:
        result = await Simulation([runtime.agent], clock).run(args.days)
    for line in result.summary_lines():
        print(line)
    failures = sum(d.post_failures for days in result.days.values() for d in days.values())
    return 0 if failures == 0 else 1
