"""``Vitals``: one persona's signs of life as its daemon sees them, for the health verdict.

Three things are followed, each as "since when has it been wrong" so that a verdict can say
"for longer than the patience": Glimpse's reachability (fed by every request to it), whether
actions get done (fed by the daemon after each post or engagement slot) and what start-up is
waiting for. A change of state — not every request — calls the ``on_change`` hooks, so the
heartbeat file says it at once without being rewritten per request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from glimpse_agent.clock import Clock
from glimpse_agent.notify import Heartbeat

#: How much of an error text is kept (it ends up in the heartbeat file and `health`).
ERROR_CHARS = 200


class Vitals:
    """Per runtime; every method is cheap and safe to call from the event loop."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.glimpse_ok_at: datetime | None = None
        self.glimpse_down_since: datetime | None = None
        self.glimpse_error: str | None = None
        self.done_at: datetime | None = None
        self.failing_since: datetime | None = None
        self.failure: str | None = None
        self.waiting_for: str | None = None
        self.waiting_since: datetime | None = None
        self._hooks: list[Callable[[], None]] = []

    def on_change(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` whenever a followed state changes (not on every request)."""
        self._hooks.append(hook)

    # ------------------------------------------------------------------ Glimpse

    def glimpse_answered(self) -> None:
        """Glimpse answered (any status below 500, a 429 included: it is there)."""
        self.glimpse_ok_at = self.clock.now()
        if self.glimpse_down_since is not None:
            self.glimpse_down_since = self.glimpse_error = None
            self._changed()

    def glimpse_failed(self, error: str) -> None:
        """Glimpse could not be reached, or answered 5xx."""
        self.glimpse_error = error[:ERROR_CHARS]
        if self.glimpse_down_since is None:
            self.glimpse_down_since = self.clock.now()
            self._changed()

    # ------------------------------------------------------------------ actions

    def action_done(self) -> None:
        """A post or an engagement session did its work."""
        self.done_at = self.clock.now()
        if self.failing_since is not None:
            self.failing_since = self.failure = None
            self._changed()

    def action_failed(self, why: str) -> None:
        """A post or an engagement session could not be done."""
        self.failure = why[:ERROR_CHARS]
        if self.failing_since is None:
            self.failing_since = self.clock.now()
            self._changed()

    # ------------------------------------------------------------------ start-up

    def waiting(self, what: str | None) -> None:
        """Start-up waits for ``what`` ("Glimpse", "the state directory"); None: no longer."""
        if what != self.waiting_for:
            self.waiting_for = what
            self.waiting_since = self.clock.now() if what else None
            self._changed()

    def stamp(self, beat: Heartbeat) -> Heartbeat:
        """``beat`` carrying what these vitals say."""
        return dataclasses.replace(
            beat,
            glimpse_ok_at=self.glimpse_ok_at,
            glimpse_down_since=self.glimpse_down_since,
            glimpse_error=self.glimpse_error,
            done_at=self.done_at,
            failing_since=self.failing_since,
            failure=self.failure,
            waiting_for=self.waiting_for,
            waiting_since=self.waiting_since,
        )

    def _changed(self) -> None:
        for hook in self._hooks:
            hook()
