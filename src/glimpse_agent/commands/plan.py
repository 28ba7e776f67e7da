"""`glimpse-agent plan`: today's plan in the persona's local time and what is left in every
bucket. Reads the ledger only (no lock, works while the daemon runs), changes nothing, and plans
exactly as the daemon does: same slots, same ids, same post count."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from glimpse_agent.clock import Clock, SimulatedClock, SystemClock
from glimpse_agent.commands._common import load, warn_if_ledger_is_ahead
from glimpse_agent.ledger import Ledger
from glimpse_agent.limits import next_midnight
from glimpse_agent.persona import Persona
from glimpse_agent.planner import (
    Slot,
    SlotDecision,
    days_to_plan,
    plan_open_day,
    post_buckets,
)

#: How many of our latest posts a made-up slot keeps its gap from (as the agent's planner).
RECENT_POSTS = 20
#: The buckets a persona spends, in the order a person reads them.
SHOWN_BUCKETS = ("posts", "generation", "reactions", "comments", "follows")


def main(args: argparse.Namespace) -> int:
    loaded = load(args)
    config, persona = loaded.config, loaded.persona
    clock: Clock = SystemClock() if args.at is None else SimulatedClock(args.at)
    now = clock.now()
    days: list[dict[str, Any]] = []
    with Ledger.open(config.state_dir, clock=clock, read_only=True) as ledger:
        warn_if_ledger_is_ahead(ledger, now)
        left = ledger.remaining_all(now, persona)
        posted = tuple(p.created_at for p in ledger.recent_posts(RECENT_POSTS))
        for local_day in days_to_plan(persona, now):
            key = local_day.isoformat()
            retries = {s: at for s, (at, _) in ledger.planned_retries(key).items()}
            missed_before = {s for s, why in ledger.retry_reasons(key).items() if why == "missed"}
            # The daemon's own recipe: same slots, same ids, same post count, same decisions.
            opened = plan_open_day(
                persona,
                local_day,
                now=now,
                done=ledger.done_slots(key),
                retries=retries,
                left_at=lambda t: ledger.remaining_all(t, persona),
                jitter_minutes=config.daemon.jitter_minutes,
                grace_minutes=config.daemon.misfire_grace_minutes,
                posted=posted,
                buckets=post_buckets(config.images.order or ()),
            )
            start, end = opened.window
            # A post slot missed while the agent was down runs later: at the time the daemon
            # saved, or the one it will choose (the same rule, so the same time).
            retries |= {d.slot.slot_id: d.slot.at for d in opened.schedule.made_up}
            missed_before |= {d.slot.slot_id for d in opened.schedule.made_up}
            days.append(
                {
                    "local_day": key,
                    "active": [_local(start, persona), _local(end, persona)],
                    "slots": [
                        _slot(
                            s,
                            opened.schedule.decision(s.slot_id),
                            retries,
                            now,
                            persona,
                            made_up=s.slot_id in missed_before,
                        )
                        for s in opened.full.slots
                    ],
                }
            )
    today = days[-1]
    if args.json:
        out = {
            "persona": persona.name,
            "local_day": today["local_day"],
            "timezone": persona.timezone,
            "active": today["active"],
            "slots": [slot for day in days for slot in day["slots"]],
            "left": left,
            "days": days,
        }
        print(json.dumps(out, indent=2))
        return 0
    local_now = now.astimezone(persona.zone)
    print(
        f"{persona.display_name} ({persona.name}) in {persona.timezone}, "
        f"now {local_now:%Y-%m-%d %H:%M %Z} ({now:%H:%M} UTC)"
    )
    for day in days:
        slots = day["slots"]
        posts = sum(1 for s in slots if s["kind"] == "post")
        print(
            f"{day['local_day']}: active {day['active'][0][11:16]}-{day['active'][1][11:16]}, "
            f"{posts} post{'s' if posts != 1 else ''}, "
            f"{len(slots) - posts} engagement session{'s' if len(slots) - posts != 1 else ''}"
        )
        for s in slots:
            again = ""
            if "retry_at" in s:
                at = datetime.fromisoformat(s["retry_at"]).astimezone(persona.zone)
                again = f"  (failed; tried again at {at:%H:%M})"
                if s["state"] == "made up":
                    again = f"  (missed; made up at {at:%H:%M})"
            print(f"  {s['local'][11:16]}  {s['kind']:<6}  {s['state']:<8}  {s['slot']}{again}")
        if not slots:
            print("  nothing planned (no quota left, or an empty active window)")
    print("left now: " + ", ".join(f"{b} {left[b]}" for b in SHOWN_BUCKETS))
    print(
        "Daily caps reset at midnight UTC "
        f"({next_midnight(now).astimezone(persona.zone):%H:%M} local)."
    )
    return 0


def _local(at: datetime, persona: Persona) -> str:
    return at.astimezone(persona.zone).isoformat()


def _slot(
    slot: Slot,
    decision: SlotDecision,
    retries: dict[str, datetime],
    now: datetime,
    persona: Persona,
    *,
    made_up: bool = False,
) -> dict[str, Any]:
    done = decision.when == "done"
    return {
        "slot": slot.slot_id,
        "kind": slot.kind,
        "local": _local(slot.at, persona),
        "utc": slot.at.isoformat(),
        "done": done,
        "past": slot.at < now,
        "state": "made up" if made_up and not done else _state(decision, now),
        **({"retry_at": retries[slot.slot_id].isoformat()} if slot.slot_id in retries else {}),
    }


def _state(decision: SlotDecision, now: datetime) -> str:
    """The schedule's decision, as `plan` names it."""
    if decision.when == "done":
        return "done"
    if decision.when == "made up":
        return "made up"
    if decision.retry:
        return "retry"
    if decision.when == "missed":
        return "missed"
    if decision.when == "late" or (decision.run_at is not None and decision.run_at <= now):
        return "due now"
    return "planned"
