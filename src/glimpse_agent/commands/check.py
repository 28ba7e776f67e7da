"""`glimpse-agent check -c agent.toml`: validate the config, then reach Glimpse and every
configured backend. One line per item; exit 0 only if every one passes. Safe to run while the
daemon runs: it takes no lock and writes nothing (see ``glimpse_agent.checks``)."""

from __future__ import annotations

import argparse

from glimpse_agent.checks import (
    SECONDS_EACH,
    CheckResult,
    render,
    run_checks,
    state_dir_problem,
)
from glimpse_agent.commands._common import load


async def main(args: argparse.Namespace) -> int:
    loaded = load(args)  # a bad config raises ConfigError: exit 2 before anything is reached
    config = loaded.config
    results = [
        CheckResult(
            "config",
            f"{config.source} (persona {loaded.persona.name})",
            error=state_dir_problem(config.state_dir),
        ),
        *await run_checks(loaded, seconds_each=SECONDS_EACH),
    ]
    for line in render(results):
        print(line, flush=True)
    return 0 if all(r.ok for r in results) else 1
