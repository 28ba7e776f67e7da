"""`glimpse-agent fleet status|pause|resume|reload|health`: a running fleet, seen and steered
over its control socket; and ``run_fleet``, what `run -c a -c b` / `run --fleet DIR` starts.

``fleet health`` is the fleet's HEALTHCHECK: exit 0 healthy, 1 unhealthy — only those two,
whatever goes wrong (no fleet answering, or none within ``--timeout``, is unhealthy: the loop
is gone or wedged), as Docker reserves exit 2. The verdict's rules are ``ops.fleet_health``'s.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from glimpse_agent.commands._common import setup_logging
from glimpse_agent.errors import GlimpseAgentError
from glimpse_agent.redaction import redact
from glimpse_agent.run.fleet_configs import FleetSource
from glimpse_agent.run.fleet_control import FleetUnreachable, default_control_path, request

#: Exit code when the fleet cannot be reached or refuses the request.
EXIT_FAILED = 1


def control_path(args: argparse.Namespace) -> Path:
    given = getattr(args, "control", None)
    return Path(given).expanduser() if given else default_control_path()


async def run_fleet(args: argparse.Namespace, configs: list[str]) -> int:
    """``run`` with several personas: one process, one ``Daemon`` each (``run.fleet``)."""
    from glimpse_agent.run.fleet import Fleet

    setup_logging(args, "info")
    # huggingface_hub phones home unless told not to (HF_HOME cannot be per persona here).
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    source = FleetSource(
        files=tuple(Path(c) for c in configs),
        directory=Path(args.fleet) if getattr(args, "fleet", None) else None,
    )
    fleet = Fleet(
        source,
        control=control_path(args),
        dry_run=bool(args.dry_run),
        listen=getattr(args, "listen", None),
    )
    return await fleet.run()


class FleetRefused(GlimpseAgentError):
    """The fleet answered, and said no."""


def main(args: argparse.Namespace) -> int:
    path = control_path(args)
    verb = args.fleet_command
    if verb == "health":
        return health(args, path)
    message: dict[str, Any] = {"command": verb}
    if verb in ("pause", "resume"):
        message["name"] = args.name
    answer = request(path, message)
    if not answer.get("ok"):
        raise FleetRefused(str(answer.get("error") or "the fleet refused the request"))
    answer.pop("ok", None)
    if args.json:
        print(json.dumps(answer, indent=2, default=str))
        return 0
    if verb == "status":
        for line in status_lines(answer):
            print(line)
    elif verb == "reload":
        for key in ("added", "removed", "restarted"):
            names = answer.get(key) or []
            print(f"{key}: {', '.join(names) if names else '-'}")
        print(f"unchanged: {answer.get('unchanged', 0)}")
        for problem in answer.get("problems") or []:
            print(f"problem: {problem}")
    else:
        row = answer.get("persona") or {}
        print(f"{row.get('persona')}: {row.get('state')}")
    return 0


def health(args: argparse.Namespace, path: Path) -> int:
    """Exit 0 healthy, 1 unhealthy; the verdict's line, then one line per persona."""
    timeout = float(getattr(args, "timeout", None) or HEALTH_TIMEOUT)
    try:
        answer = request(path, {"command": "health"}, timeout=timeout)
    except FleetUnreachable as exc:
        answer = {"healthy": False, "reason": str(exc), "personas": []}
    if not answer.pop("ok", True):
        error = answer.get("error") or "it refused"
        answer = {"healthy": False, "reason": f"the fleet on {path} said: {error}", "personas": []}
    healthy = bool(answer.get("healthy"))
    if args.json:
        print(json.dumps({"control": str(path), **answer}, indent=2, default=str))
    else:
        print(redact(f"{'healthy' if healthy else 'unhealthy'}: {answer.get('reason')}"))
        for row in answer.get("personas") or []:
            verdict = "healthy" if row.get("healthy") else "unhealthy"
            line = f"{row.get('persona')}: {verdict} ({row.get('state')}): {row.get('reason')}"
            print("  " + redact(_one_line(line, 300)))
    return 0 if healthy else 1


#: Seconds ``fleet health`` waits for the fleet's answer (a live loop answers at once).
HEALTH_TIMEOUT = 10.0


def status_lines(status: dict[str, Any]) -> list[str]:
    """The table: one line per persona; quotas left as ``posts/generation/reactions/...``."""
    rows = status.get("personas") or []
    table = [("PERSONA", "STATE", "NEXT ACTION", "LEFT p/g/r/c/f", "LAST ERROR")]
    for row in rows:
        nxt = row.get("next_action")
        next_text = f"{nxt['job']} {nxt['at'][:16].replace('T', ' ')}" if nxt else "-"
        quotas = row.get("quotas_left")
        left = "/".join(_short(quotas.get(b)) for b in _BUCKETS) if quotas else "-"
        error = row.get("last_error") or row.get("detail") or "-"
        table.append((row["persona"], row["state"], next_text, left, _one_line(error, 70)))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in table]
    counts = status.get("counts") or {}
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    lines.append(f"{len(rows)} personas from {status.get('source')}: {summary or 'none'}")
    return lines


_BUCKETS = ("posts", "generation", "reactions", "comments", "follows")


def _short(value: object) -> str:
    return "-" if value is None else str(value)


def _one_line(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"
