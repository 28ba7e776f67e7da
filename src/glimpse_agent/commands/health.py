"""`glimpse-agent health -c agent.toml [--json]`: is this config's daemon healthy?

Reads the heartbeat file the daemon writes in its state dir (no lock: it runs beside the
daemon) and judges it (``glimpse_agent.health``) with ``[ops] unhealthy_after_minutes``. Prints
one line, "healthy: ..." or "unhealthy: ...", and exits 0 or 1 — only those two, whatever goes
wrong (a config that cannot be read is unhealthy too): Docker's HEALTHCHECK reserves exit 2.
Kept light, as it runs every few seconds: the config, the heartbeat, nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from glimpse_agent.config import load_agent
from glimpse_agent.errors import ConfigError
from glimpse_agent.health import Verdict, judge
from glimpse_agent.notify import read_heartbeat
from glimpse_agent.redaction import redact

HEARTBEAT_FILE = "heartbeat"


def main(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    doc: dict[str, Any] = {"checked_at": now.isoformat()}
    try:
        loaded = load_agent(Path(args.config))
    except ConfigError as exc:
        verdict = Verdict(False, f"cannot read the config: {'; '.join(map(str, exc.problems))}")
        return _report(args, verdict, doc)
    config = loaded.config
    path = config.state_dir / HEARTBEAT_FILE
    beat = read_heartbeat(path)
    patience = timedelta(minutes=config.ops.unhealthy_after_minutes)
    verdict = judge(beat, now, patience)
    if beat is None:
        verdict = Verdict(False, f"{verdict.reason} (no readable {path})")
    doc.update(
        persona=loaded.persona.name,
        heartbeat_file=str(path),
        unhealthy_after_minutes=config.ops.unhealthy_after_minutes,
        heartbeat=json.loads(beat.to_json()) if beat is not None else None,
    )
    return _report(args, verdict, doc)


def _report(args: argparse.Namespace, verdict: Verdict, doc: dict[str, Any]) -> int:
    if getattr(args, "json", False):
        doc = {
            "healthy": verdict.healthy,
            "reason": redact(verdict.reason),
            "since": verdict.since.isoformat() if verdict.since else None,
            **doc,
        }
        print(json.dumps(doc, indent=2))
    else:
        print(redact(verdict.line), file=sys.stdout)
    return 0 if verdict.healthy else 1
