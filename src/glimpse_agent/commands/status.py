"""`glimpse-agent status`: quotas used/left per bucket, last posts, spend today, last errors,
the next planned action. Reads the ledger only (no lock: it works while the daemon runs);
``--json`` prints the same facts for machines."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from typing import Any

from glimpse_agent.clock import Clock, SimulatedClock, SystemClock
from glimpse_agent.commands._common import load, warn_if_ledger_is_ahead
from glimpse_agent.ledger import Ledger
from glimpse_agent.persona import Persona

#: Buckets shown in the table even when unused; the others only once something used them.
MAIN_BUCKETS = ("posts", "generation", "reactions", "comments", "follows")


def main(args: argparse.Namespace) -> int:
    loaded = load(args)
    config, persona = loaded.config, loaded.persona
    clock: Clock = SystemClock() if args.at is None else SimulatedClock(args.at)
    now = clock.now()
    today = now.astimezone(persona.zone).date()
    upcoming: list[dict[str, Any]] = []
    with Ledger.open(config.state_dir, clock=clock, read_only=True) as ledger:
        warn_if_ledger_is_ahead(ledger, now)
        view: dict[str, Any] = ledger.status_view(now, persona)
        # Yesterday's plan too: an overnight window opened yesterday may still be running.
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            key = day.isoformat()
            plan = ledger.load_plan(key)
            done = set(ledger.done_slots(key))
            # A slot moved (retried after a failure, or made up after a miss) runs at its new
            # time: the plan saved keeps the planned one.
            moved = ledger.planned_retries(key)
            why = ledger.retry_reasons(key)
            for s in (plan or {}).get("slots", []):
                if s["slot_id"] in done:
                    continue
                if s["slot_id"] in moved:
                    again = "made up" if why.get(s["slot_id"]) == "missed" else "retry"
                    s = {**s, "at": moved[s["slot_id"]][0].isoformat(), "moved": again}
                if datetime.fromisoformat(s["at"]) >= now:
                    upcoming.append(s)
    upcoming.sort(key=lambda s: datetime.fromisoformat(s["at"]))
    view["next_action"] = upcoming[0] if upcoming else None
    view["persona"] = persona.name
    if args.json:
        print(json.dumps(view, indent=2, default=str))
        return 0
    for line in _human(view, persona, now):
        print(line)
    return 0


def _human(view: dict[str, Any], persona: Persona, now: datetime) -> list[str]:
    zone = persona.zone

    def local(iso: str | None) -> str:
        if not iso:
            return "-"
        at = datetime.fromisoformat(iso)
        if at <= now:
            return "now"
        day = "" if at.astimezone(zone).date() == now.astimezone(zone).date() else "%a "
        return at.astimezone(zone).strftime(f"{day}%H:%M")

    lines = [f"{persona.display_name} ({persona.name}) at {now.astimezone(zone):%Y-%m-%d %H:%M %Z}"]
    lines.append("quotas (today = the UTC day)   used   cap  left  next free (local)")
    for bucket, q in view["quotas"].items():
        if bucket not in MAIN_BUCKETS and not q["used_today"] and q["blocked_until"] is None:
            continue
        cap = "-" if q["daily_cap"] is None else str(q["daily_cap"])
        note = f"  blocked by a 429 until {local(q['blocked_until'])}" if q["blocked_until"] else ""
        lines.append(
            f"  {bucket:<28} {q['used_today']:>4} {cap:>5} {q['left']:>5}  "
            f"{local(q['next_free'])}{note}"
        )
    lines.append(
        f"spend today: ${view['spend_today_usd']:.2f} of ${view['budget_usd_per_day']:.2f}"
    )
    nxt = view.get("next_action")
    lines.append(
        "next planned action: "
        + (
            f"{nxt['kind']} at {local(nxt['at'])} ({nxt['slot_id']})"
            + (f" [{nxt['moved']}]" if nxt.get("moved") else "")
            if nxt
            else "none planned"
        )
    )
    lines.append("recent posts:" + ("" if view["recent_posts"] else " none"))
    for p in view["recent_posts"]:
        at = datetime.fromisoformat(p["at"]).astimezone(zone)
        caption = " ".join(p["caption"].split())
        lines.append(f"  {at:%Y-%m-%d %H:%M}  {p['topic']}: {caption!r} [{p['backend']}]")
    intents = view["unsettled_intents"]
    lines.append(
        "unsettled intents: "
        + (
            ", ".join(f"{i['kind']} since {i['at']}" for i in intents)
            + " (settled against Glimpse at the next start)"
            if intents
            else "none"
        )
    )
    lines.append("last errors:" + ("" if view["last_errors"] else " none"))
    for e in view["last_errors"]:
        lines.append(f"  {e['at']}  {e['where']}: {e['message']}")
    lines.append(f"ledger: {view['ledger_bytes'] / 1024:.0f} KB")
    return lines
