"""The health verdict on a fleet: is the process hosting many personas doing its job? A pure
function of the fleet loop's last turn, each persona's state and own verdict (the single
daemon's rules, ``glimpse_agent.health.judge``, with its own ``[ops] unhealthy_after_minutes``),
and the time. ``glimpse-agent fleet health`` and the fleet's ``/healthz`` both ask it.

The fleet is unhealthy, in the order checked, when:
- its loop is gone: no turn yet, or none for ``STALE_AFTER`` (it turns every 30 s);
- a persona is stuck (an action past its deadline that ignored its cancellation): the same
  rule as the systemd watchdog, which is then no longer fed, since only a restart cures it;
- it hosts no persona at all;
- every persona that is not paused is unhealthy (Glimpse unreachable or nothing done for
  longer than its patience, failed, a config that does not load, stopped).

One unhealthy persona among healthy ones leaves the fleet healthy (restarting the fleet would
not cure a persona's bad key or its Glimpse being down, and would interrupt the others); the
verdict names it, and each persona's own verdict is in the detail (and in
``glimpse_agent_healthy{persona=…}``). A paused persona is neither: the operator asked for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from glimpse_agent.health import STALE_AFTER, Verdict

#: A member's verdict reason when it is paused (``fleet pause``).
PAUSED = "paused"


@dataclass(frozen=True)
class MemberVerdict:
    """One persona: its fleet state (running, paused, failed, …) and its own verdict."""

    persona: str
    state: str
    verdict: Verdict

    @property
    def paused(self) -> bool:
        return self.state == PAUSED

    def to_dict(self) -> dict[str, Any]:
        return {
            "persona": self.persona,
            "state": self.state,
            "healthy": self.verdict.healthy,
            "reason": self.verdict.reason,
            "since": self.verdict.since.isoformat() if self.verdict.since else None,
        }


@dataclass(frozen=True)
class FleetVerdict:
    healthy: bool
    reason: str
    members: tuple[MemberVerdict, ...]

    @property
    def line(self) -> str:
        return f"{'healthy' if self.healthy else 'unhealthy'}: {self.reason}"

    @property
    def unhealthy(self) -> list[MemberVerdict]:
        return [m for m in self.members if not m.paused and not m.verdict.healthy]

    def to_dict(self) -> dict[str, Any]:
        counts = {
            "healthy": sum(1 for m in self.members if not m.paused and m.verdict.healthy),
            "unhealthy": len(self.unhealthy),
            "paused": sum(1 for m in self.members if m.paused),
        }
        return {
            "healthy": self.healthy,
            "reason": self.reason,
            "counts": counts,
            "personas": [m.to_dict() for m in self.members],
        }


def judge_fleet(
    loop_at: datetime | None, now: datetime, members: list[MemberVerdict]
) -> FleetVerdict:
    """The verdict on a fleet whose loop last turned at ``loop_at``."""
    kept = tuple(members)
    if loop_at is None:
        return FleetVerdict(False, "the fleet's loop has not turned yet", kept)
    if now - loop_at > STALE_AFTER:
        return FleetVerdict(
            False,
            f"the fleet's loop has made no progress for {int((now - loop_at).total_seconds())} s",
            kept,
        )
    stuck = [m.persona for m in kept if m.state == "stuck"]
    if stuck:
        return FleetVerdict(
            False,
            f"stuck: {', '.join(stuck)} (an action past its deadline ignored its cancellation; "
            "the watchdog is no longer fed)",
            kept,
        )
    if not kept:
        return FleetVerdict(False, "no persona to run", kept)
    active = [m for m in kept if not m.paused]
    paused = len(kept) - len(active)
    if not active:
        return FleetVerdict(True, f"every persona is paused ({paused})", kept)
    bad = [m for m in active if not m.verdict.healthy]
    named = "; ".join(f"{m.persona}: {m.verdict.reason}" for m in bad)
    if len(bad) == len(active):
        return FleetVerdict(False, f"every persona is unhealthy: {named}", kept)
    summary = f"{len(active) - len(bad)} of {len(kept)} personas healthy"
    if paused:
        summary += f", {paused} paused"
    if bad:
        summary += f"; unhealthy: {named}"
    return FleetVerdict(True, summary, kept)


def paused_verdict(since: datetime | None) -> Verdict:
    """What a paused persona's own verdict says (healthy: it does what it was told)."""
    at = f" since {since.isoformat(timespec='seconds')}" if since else ""
    return Verdict(True, f"{PAUSED}{at} (glimpse-agent fleet resume NAME)")
