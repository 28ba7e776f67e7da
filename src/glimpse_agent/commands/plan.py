from __future__ import annotations

import argparse
import json

from glimpse_agent.clock import SystemClock
from glimpse_agent.commands._common import load
from glimpse_agent.ledger import Ledger
from glimpse_agent.planner import active_window, plan_day


def main(args: argparse.Namespace) -> int:
    loaded = load(args)
    config, persona = loaded.config, loaded.persona
    now = SystemClock().now()
    zone = persona.zone
    local_day = now.astimezone(zone).date()
    with Ledger.open(config.state_dir, clock=SystemClock(), read_only=True) as ledger:
        left = ledger.remaining_all(now, persona)
        done = ledger.done_slots(local_day.isoformat())
    posted = sum(1 for s in done if "/post/" in s)
    allowed = max(
        0,
        min(
            persona.posts_per_day, posted + left.get("posts", 0), posted + left.get("generation", 0)
        ),
    )
    plan = plan_day(
        persona,
        local_day,
        posts_allowed=allowed,
        jitter_minutes=config.daemon.jitter_minutes,
        done_slot_ids=frozenset(),
        now=None,
    )
    start, end = active_window(persona, local_day)
    rows = [
        {
            "slot": s.slot_id,
            "kind": s.kind,
            "local": s.at.astimezone(zone).isoformat(),
            "done": s.slot_id in done,
            "past": s.at < now,
        }
        for s in plan.slots
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "persona": persona.name,
                    "local_day": local_day.isoformat(),
                    "timezone": persona.timezone,
                    "active": [
                        start.astimezone(zone).isoformat(),
                        end.astimezone(zone).isoformat(),
                    ],
                    "slots": rows,
                    "left": left,
                },
                indent=2,
            )
        )
        return 0
    print(
        f"{persona.display_name} ({persona.name}) — {local_day} in {persona.timezone}, "
        f"active {start.astimezone(zone):%H:%M}-{end.astimezone(zone):%H:%M}"
    )
    for r in rows:
        state = "done" if r["done"] else ("missed" if r["past"] else "planned")
        print(f"  {str(r['local'])[11:16]}  {r['kind']:<6}  {state:<8} {r['slot']}")
    print("left now: " + ", ".join(f"{k} {v}" for k, v in sorted(left.items())))
    return 0
