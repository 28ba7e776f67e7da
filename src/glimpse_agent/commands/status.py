from __future__ import annotations

import argparse
import json
from typing import Any

from glimpse_agent.clock import SystemClock
from glimpse_agent.commands._common import load
from glimpse_agent.ledger import Ledger


def main(args: argparse.Namespace) -> int:
    loaded = load(args)
    config, persona = loaded.config, loaded.persona
    clock = SystemClock()
    now = clock.now()
    with Ledger.open(config.state_dir, clock=clock, read_only=True) as ledger:
        view: dict[str, Any] = ledger.status_view(now, persona)
        plan = ledger.load_plan(now.astimezone(persona.zone).date().isoformat())
        done = set(ledger.done_slots(now.astimezone(persona.zone).date().isoformat()))
    upcoming = [
        s
        for s in (plan or {}).get("slots", [])
        if s["slot_id"] not in done and s["at"] >= now.isoformat()
    ]
    view["next_action"] = upcoming[0] if upcoming else None
    view["persona"] = persona.name
    if args.json:
        print(json.dumps(view, indent=2, default=str))
        return 0
    local = now.astimezone(persona.zone)
    print(f"{persona.display_name} ({persona.name}) at {local:%Y-%m-%d %H:%M %Z}")
    for key, value in view.items():
        if key == "persona":
            continue
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        elif isinstance(value, list):
            print(f"{key}:" + ("" if value else " none"))
            for item in value:
                print(f"  - {item}")
        else:
            print(f"{key}: {value}")
    return 0
