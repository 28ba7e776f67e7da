"""What every command does first: load the config and persona, set up logging."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from glimpse_agent.config import LoadedAgent, load_agent
from glimpse_agent.logs import bind_process_context, configure_logging

if TYPE_CHECKING:
    from glimpse_agent.ledger import Ledger


def setup_logging(
    args: argparse.Namespace, level: str = "info", *, stream: TextIO | None = None
) -> None:
    """Logging as ``--log-level``/``--log-format`` say (else ``level``), onto ``stream``
    (default stderr)."""
    fmt = getattr(args, "log_format", "auto")
    configure_logging(
        getattr(args, "log_level", None) or level,
        json=None if fmt == "auto" else fmt == "json",
        stream=stream,
    )


def load(args: argparse.Namespace) -> LoadedAgent:
    """Load the agent named by ``-c``; raises ConfigError (exit 2) before anything else runs."""
    loaded = load_agent(Path(args.config))
    # Every later line names the persona, whichever logger writes it.
    bind_process_context(persona=loaded.persona.name)
    setup_logging(args, loaded.config.log_level)
    # huggingface_hub phones home unless told not to; keep its cache in our state dir.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HOME", str(loaded.config.state_dir / "hf-cache"))
    return loaded


def warn_if_ledger_is_ahead(ledger: Ledger, now: datetime) -> None:
    """`simulate` and `sandbox` write ledgers in simulated time, often days ahead of the wall
    clock: counted "as of now" they make no sense, so say how to look at them instead."""
    newest = ledger.recent_posts(1)
    if newest and newest[0].created_at > now:
        print(
            f"note: this ledger holds posts up to {newest[0].created_at:%Y-%m-%d %H:%M} UTC, after "
            f"{now:%Y-%m-%d %H:%M} UTC (a simulated run?); add --at "
            f"{newest[0].created_at:%Y-%m-%dT%H:%MZ} to see it as of then",
            file=sys.stderr,
        )
