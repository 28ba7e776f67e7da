"""The health verdict: is the persona's daemon doing its job? A pure function of the heartbeat
the daemon wrote, the time, and how long a fault may last (``[ops] unhealthy_after_minutes``);
``glimpse-agent health`` and ``/healthz`` both ask it.

Unhealthy, in the order checked:
- no heartbeat: the daemon is not running (or has not written one yet);
- "stopped": the daemon ended;
- "stuck": an action outlived its deadline and its cancellation;
- stale: the loop has shown no progress for ``STALE_AFTER`` (it writes every 30 s);
- start-up has waited for the state directory longer than the patience;
- Glimpse has been unreachable longer than the patience;
- every action has failed for longer than the patience ("nothing could be done").
Anything else is healthy, with what it is waiting for, if anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from glimpse_agent.notify import HEARTBEAT_MAX_AGE_SECONDS, Heartbeat

#: The loop writes the heartbeat every 30 s while it makes progress.
STALE_AFTER = timedelta(seconds=HEARTBEAT_MAX_AGE_SECONDS)
DEFAULT_PATIENCE = timedelta(minutes=30)


@dataclass(frozen=True)
class Verdict:
    """``healthy`` and one line saying why (``reason``); ``since``: when the fault began."""

    healthy: bool
    reason: str
    since: datetime | None = None

    @property
    def line(self) -> str:
        return f"{'healthy' if self.healthy else 'unhealthy'}: {self.reason}"


def judge(beat: Heartbeat | None, now: datetime, patience: timedelta = DEFAULT_PATIENCE) -> Verdict:
    """The verdict on ``beat`` at ``now``; faults shorter than ``patience`` are still healthy."""
    if beat is None:
        return Verdict(False, "no heartbeat: the daemon is not running, or has not started yet")
    if beat.state == "stopped":
        return Verdict(False, f"the daemon stopped at {_at(beat.written_at or beat.at)}")
    if beat.state == "stuck":
        since = beat.action_since
        return Verdict(
            False,
            f"stuck: {beat.action or 'an action'} running since {_at(since)}, past its deadline; "
            "the watchdog is no longer fed",
            since,
        )
    if now - beat.at > STALE_AFTER:
        return Verdict(
            False,
            f"no progress for {_span(now - beat.at)} (last at {_at(beat.at)}): the loop has "
            "stopped",
            beat.at,
        )
    waiting_since = beat.waiting_since
    if beat.waiting_for == "the state directory" and _longer(waiting_since, now, patience):
        assert waiting_since is not None
        return Verdict(
            False,
            f"waiting for the state directory for {_span(now - waiting_since)} (since "
            f"{_at(waiting_since)}): is the disk full or read-only?",
            waiting_since,
        )
    if _longer(beat.glimpse_down_since, now, patience):
        down = beat.glimpse_down_since
        assert down is not None
        return Verdict(
            False,
            f"Glimpse unreachable for {_span(now - down)} (since {_at(down)})"
            + (f": {beat.glimpse_error}" if beat.glimpse_error else ""),
            down,
        )
    if _longer(beat.failing_since, now, patience):
        failing = beat.failing_since
        assert failing is not None
        return Verdict(
            False,
            f"nothing could be done for {_span(now - failing)}: every action since "
            f"{_at(failing)} failed" + (f", the last with: {beat.failure}" if beat.failure else ""),
            failing,
        )
    return Verdict(True, _well(beat, now, patience))


def _well(beat: Heartbeat, now: datetime, patience: timedelta) -> str:
    """What a healthy daemon is doing, and the fault it is still within its patience for."""
    notes: list[str] = []
    if beat.glimpse_down_since is not None:
        notes.append(
            f"waiting for Glimpse for {_span(now - beat.glimpse_down_since)} (unhealthy after "
            f"{_span(patience)})" + (f": {beat.glimpse_error}" if beat.glimpse_error else "")
        )
    elif beat.waiting_for is not None and beat.waiting_since is not None:
        notes.append(f"waiting for {beat.waiting_for} for {_span(now - beat.waiting_since)}")
    if beat.failing_since is not None:
        notes.append(
            f"actions failing for {_span(now - beat.failing_since)}"
            + (f" ({beat.failure})" if beat.failure else "")
        )
    if beat.action:
        notes.append(f"running {beat.action}")
    if beat.done_at is not None and beat.failing_since is None:
        notes.append(f"last action done {_span(now - beat.done_at)} ago")
    return "; ".join([beat.state, *notes])


def _longer(since: datetime | None, now: datetime, patience: timedelta) -> bool:
    return since is not None and now - since > patience


def _at(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else "an unknown time"


def _span(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
