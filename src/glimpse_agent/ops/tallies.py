"""``Tallies``: what one persona did since its process started, as plain counters — actions by
kind and outcome, each image backend's attempts, failures, latency and spend, and the requests
to Glimpse. Nothing here needs ``prometheus_client``: the collector (``ops.metrics``) reads
these when, and only when, a listener is scraped."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from glimpse_agent.agent import Outcome

#: Upper bounds (seconds) of the latency buckets: an image takes seconds to minutes, a Glimpse
#: request milliseconds to its timeout.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
#: The engagement decisions an ``engage`` outcome counts.
ENGAGEMENT_KINDS = ("like", "comment", "follow", "reply")


@dataclass
class Latency:
    """A histogram: how many observations fell at or under each bound, their sum and count."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """(upper bound, observations at or under it), ending with "+Inf": the exposition's
        buckets."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((repr(float(bound)), float(running)))
        out.append(("+Inf", float(self.count)))
        return out


@dataclass
class Tallies:
    """Per runtime (never shared between personas)."""

    #: (kind, outcome) -> count. Kinds: post, engage, like, comment, follow, reply, decision.
    actions: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (backend, outcome) -> attempts; outcome "ok" or the router's failure kind.
    backend_attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    backend_latency: dict[str, Latency] = field(default_factory=dict)
    backend_spend_usd: dict[str, float] = field(default_factory=dict)
    #: outcome ("ok", "client_error", "server_error", "unreachable") -> requests to Glimpse.
    glimpse_requests: Counter[str] = field(default_factory=Counter)
    glimpse_latency: Latency = field(default_factory=Latency)

    def record_outcome(self, outcome: Outcome) -> None:
        """One post or engagement session as it ended."""
        if outcome.kind == "engage":
            self.actions[("engage", "ok" if outcome.ok else "failed")] += 1
            for kind in ENGAGEMENT_KINDS:
                if outcome.counts.get(kind):
                    self.actions[(kind, "ok")] += outcome.counts[kind]
            if outcome.counts.get("skipped"):
                self.actions[("decision", "skipped")] += outcome.counts["skipped"]
            return
        self.actions[(outcome.kind, outcome_label(outcome))] += 1

    def record_error(self, kind: str) -> None:
        """An action that raised, or was cancelled at its deadline."""
        self.actions[(kind, "error")] += 1

    def backend_attempt(self, backend: str, outcome: str, seconds: float, cost: float) -> None:
        self.backend_attempts[(backend, outcome)] += 1
        self.backend_latency.setdefault(backend, Latency()).observe(seconds)
        if cost > 0:
            self.backend_spend_usd[backend] = self.backend_spend_usd.get(backend, 0.0) + cost

    def glimpse_request(self, status: int | None, seconds: float) -> None:
        """A request to Glimpse ended: ``status`` None when no answer came."""
        if status is None:
            label = "unreachable"
        elif status >= 500:
            label = "server_error"
        elif status >= 400:
            label = "client_error"
        else:
            label = "ok"
        self.glimpse_requests[label] += 1
        self.glimpse_latency.observe(seconds)


def outcome_label(outcome: Outcome) -> str:
    """ok, dry_run, already_done, retry (failed, tried again later) or failed."""
    if outcome.ok:
        if outcome.detail == "dry run":
            return "dry_run"
        if outcome.detail == "already done":
            return "already_done"
        return "ok"
    if outcome.retry_at is not None or outcome.retry_after is not None:
        return "retry"
    return "failed"
