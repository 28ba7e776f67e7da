"""The Prometheus view of one or more personas: ``PersonaFeed`` gathers what one persona's
runtime knows (tallies, vitals, the daemon's heartbeat, the ledger's status view), and
``registry_for(feeds)`` is a ``CollectorRegistry`` of its own (never the global default one)
whose one collector yields every family once, with one sample set per persona, each labelled
``persona``. A fleet of personas in one process is then one registry with many feeds.

``prometheus_client`` is imported by ``registry_for`` and the collector only: the daemon
without a listener never loads it.

Families (every one labelled ``persona``):

================================================  =======  ===========================
``glimpse_agent_info``                            gauge    ``version``
``glimpse_agent_healthy``                         gauge    1 healthy, 0 not (``health``)
``glimpse_agent_last_progress_timestamp_seconds`` gauge    the loop last made progress
``glimpse_agent_glimpse_reachable``               gauge    1 answers, 0 unreachable
``glimpse_agent_glimpse_last_answer_timestamp_seconds`` gauge
``glimpse_agent_glimpse_requests_total``          counter  ``outcome``
``glimpse_agent_glimpse_request_seconds``         histo
``glimpse_agent_actions_total``                   counter  ``kind``, ``outcome``
``glimpse_agent_backend_attempts_total``          counter  ``backend``, ``outcome``
``glimpse_agent_backend_failures_total``          counter  ``backend``, ``reason``
``glimpse_agent_backend_latency_seconds``         histo    ``backend``
``glimpse_agent_backend_spend_usd_total``         counter  ``backend``
``glimpse_agent_quota_used_today``                gauge    ``bucket`` (UTC day)
``glimpse_agent_quota_left``                      gauge    ``bucket``
``glimpse_agent_quota_daily_cap``                 gauge    ``bucket``
``glimpse_agent_spend_usd_today``                 gauge
``glimpse_agent_budget_usd_per_day``              gauge
``glimpse_agent_last_post_timestamp_seconds``     gauge
``glimpse_agent_unsettled_intents``               gauge
``glimpse_agent_ledger_bytes``                    gauge
``glimpse_agent_paused``                          gauge    1 paused (``fleet pause``), else 0
``glimpse_agent_state``                           gauge    ``state`` (fleet members only)
================================================  =======  ===========================

``glimpse_agent_state`` has one sample per fleet member, 1, labelled with its fleet state
(starting, running, stuck, stopping, paused, failed, config_error, stopped).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from glimpse_agent import __version__
from glimpse_agent.clock import Clock
from glimpse_agent.health import DEFAULT_PATIENCE, Verdict, judge
from glimpse_agent.logs import get_logger
from glimpse_agent.notify import Heartbeat
from glimpse_agent.ops.tallies import Latency, Tallies
from glimpse_agent.ops.vitals import Vitals

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

PREFIX = "glimpse_agent"


def _no_heartbeat() -> Heartbeat | None:
    return None


def _no_state() -> str | None:
    return None


@dataclass
class PersonaFeed:
    """What one persona's runtime offers the metrics and ``/healthz``. ``read_ledger`` returns
    the ledger's status view (``Ledger.status_view``; None while the ledger is not open yet);
    ``heartbeat`` the daemon's heartbeat as of now (None outside a daemon)."""

    persona: str
    vitals: Vitals
    tallies: Tallies
    clock: Clock
    patience: timedelta = DEFAULT_PATIENCE
    read_ledger: Callable[[], Awaitable[dict[str, Any] | None]] | None = None
    heartbeat: Callable[[], Heartbeat | None] = _no_heartbeat
    #: A fleet member's state ("running", "paused", "failed", …); None outside a fleet.
    state: Callable[[], str | None] = _no_state
    #: The verdict, when the host knows better than the heartbeat alone (a fleet member that
    #: is paused, or failed); None: ``judge`` the heartbeat.
    verdict_of: Callable[[], Verdict] | None = None
    #: The status view as of the last ``refresh``.
    ledger_view: dict[str, Any] | None = field(default=None, repr=False)

    async def refresh(self) -> None:
        """Read the ledger's view now (on its own thread, like every ledger call). A ledger
        that cannot be read keeps the last view: a scrape never fails for it."""
        if self.read_ledger is None:
            return
        try:
            view = await self.read_ledger()
        except Exception as exc:
            get_logger("glimpse_agent.metrics", persona=self.persona).warning(
                "metrics_ledger_unreadable", error=str(exc), error_type=type(exc).__name__
            )
            return
        if view is not None:
            self.ledger_view = view

    def verdict(self) -> Verdict:
        if self.verdict_of is not None:
            return self.verdict_of()
        return judge(self.heartbeat(), self.clock.now(), self.patience)


def registry_for(feeds: list[PersonaFeed]) -> CollectorRegistry:
    """A registry of our own holding one collector over ``feeds`` (the list is read at each
    scrape, so a persona added later is scraped too)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PersonaCollector(feeds))
    return registry


class PersonaCollector:
    """A custom collector (``collect()`` yields metric families): each family once, with the
    samples of every persona."""

    def __init__(self, feeds: list[PersonaFeed]) -> None:
        self.feeds = feeds

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=["persona", *labels])

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
            return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=["persona", *labels])

        def histogram(name: str, doc: str, labels: tuple[str, ...] = ()) -> HistogramMetricFamily:
            return HistogramMetricFamily(f"{PREFIX}_{name}", doc, labels=["persona", *labels])

        info = gauge("info", "glimpse-agent running this persona (always 1)", ("version",))
        healthy = gauge("healthy", "1 if `glimpse-agent health` would say healthy, else 0")
        progress = gauge(
            "last_progress_timestamp_seconds", "when the daemon's loop last made progress"
        )
        reachable = gauge("glimpse_reachable", "1 while Glimpse answers, 0 while unreachable")
        answered = gauge(
            "glimpse_last_answer_timestamp_seconds", "when Glimpse last answered a request"
        )
        requests = counter(
            "glimpse_requests",
            "requests to Glimpse by outcome (ok, client_error, server_error, unreachable)",
            ("outcome",),
        )
        request_seconds = histogram("glimpse_request_seconds", "time to Glimpse's answer")
        actions = counter(
            "actions",
            "actions by kind (post, engage, like, comment, follow, reply, decision) and outcome "
            "(ok, retry, failed, error, dry_run, already_done, skipped)",
            ("kind", "outcome"),
        )
        attempts = counter(
            "backend_attempts", "image backend attempts by outcome", ("backend", "outcome")
        )
        failures = counter(
            "backend_failures",
            "image backend attempts that failed, by reason (rate_limited, unavailable, "
            "configuration, content_rejected, deadline, error)",
            ("backend", "reason"),
        )
        latency = histogram(
            "backend_latency_seconds", "image backend attempt duration", ("backend",)
        )
        spend = counter("backend_spend_usd", "USD spent on images since start", ("backend",))
        used = gauge("quota_used_today", "actions counted today (UTC) per bucket", ("bucket",))
        left = gauge("quota_left", "actions left now per bucket, all windows", ("bucket",))
        cap = gauge("quota_daily_cap", "the daily cap per bucket", ("bucket",))
        spent = gauge("spend_usd_today", "USD spent today (UTC), from the ledger")
        budget = gauge("budget_usd_per_day", "the persona's daily budget")
        last_post = gauge("last_post_timestamp_seconds", "when the persona last posted")
        intents = gauge("unsettled_intents", "writes begun and not yet settled")
        ledger_bytes = gauge("ledger_bytes", "size of the ledger file")
        paused = gauge("paused", "1 while the persona is paused (glimpse-agent fleet pause)")
        states = gauge(
            "state",
            "a fleet member's state (starting, running, stuck, stopping, paused, failed, "
            "config_error, stopped), always 1",
            ("state",),
        )

        for feed in self.feeds:
            p = feed.persona
            info.add_metric([p, __version__], 1)
            healthy.add_metric([p], 1 if feed.verdict().healthy else 0)
            state = feed.state()
            paused.add_metric([p], 1 if state == "paused" else 0)
            if state is not None:
                states.add_metric([p, state], 1)
            beat = feed.heartbeat()
            if beat is not None:
                progress.add_metric([p], beat.at.timestamp())
            vitals, tallies = feed.vitals, feed.tallies
            if vitals.glimpse_down_since is not None:
                reachable.add_metric([p], 0)
            elif vitals.glimpse_ok_at is not None:
                reachable.add_metric([p], 1)
            if vitals.glimpse_ok_at is not None:
                answered.add_metric([p], vitals.glimpse_ok_at.timestamp())
            for outcome, n in sorted(tallies.glimpse_requests.items()):
                requests.add_metric([p, outcome], n)
            _observe(request_seconds, [p], tallies.glimpse_latency)
            for (kind, outcome), n in sorted(tallies.actions.items()):
                actions.add_metric([p, kind, outcome], n)
            failed: dict[tuple[str, str], int] = {}
            for (backend, outcome), n in sorted(tallies.backend_attempts.items()):
                attempts.add_metric([p, backend, outcome], n)
                if outcome != "ok":
                    failed[(backend, outcome)] = failed.get((backend, outcome), 0) + n
            for (backend, reason), n in sorted(failed.items()):
                failures.add_metric([p, backend, reason], n)
            for backend, hist in sorted(tallies.backend_latency.items()):
                _observe(latency, [p, backend], hist)
            for backend, usd in sorted(tallies.backend_spend_usd.items()):
                spend.add_metric([p, backend], usd)
            view = feed.ledger_view
            if view is None:
                continue
            for bucket, q in sorted(view.get("quotas", {}).items()):
                used.add_metric([p, bucket], q["used_today"])
                left.add_metric([p, bucket], q["left"])
                if q.get("daily_cap") is not None:
                    cap.add_metric([p, bucket], q["daily_cap"])
            spent.add_metric([p], float(view.get("spend_today_usd") or 0.0))
            budget.add_metric([p], float(view.get("budget_usd_per_day") or 0.0))
            posts = [datetime.fromisoformat(post["at"]) for post in view.get("recent_posts") or []]
            if posts:
                last_post.add_metric([p], max(posts).timestamp())
            intents.add_metric([p], len(view.get("unsettled_intents") or []))
            ledger_bytes.add_metric([p], view.get("ledger_bytes") or 0)

        yield from (
            info,
            healthy,
            progress,
            reachable,
            answered,
            requests,
            request_seconds,
            actions,
            attempts,
            failures,
            latency,
            spend,
            used,
            left,
            cap,
            spent,
            budget,
            last_post,
            intents,
            ledger_bytes,
            paused,
            states,
        )


def _observe(family: Any, labels: list[str], hist: Latency) -> None:
    if hist.count:
        family.add_metric(labels, hist.cumulative(), sum_value=hist.total)
