"""The daemon loop: the only place that knows about real time, signals and systemd.

APScheduler 3.11's ``AsyncIOScheduler`` holds one job per planned action (post or engagement
session), a job that re-plans at the persona's local midnight, and a Glimpse heartbeat. Actions
never overlap (one lock). A slot that fires late still runs once if it is within the misfire
grace, and never if it is older (yesterday's): ``planner.schedule`` decides, as it does for the
simulation; the re-plan job runs however late it fires.
Start-up comes in two steps. First the state: the ledger is opened (lock, read, repair) and the
heartbeat file written; a state directory that is full or read-only is waited for (with
``EXTEND_TIMEOUT_USEC``), one this user may not write ends the process (exit 3). Then
``READY=1``: config and state are sound, so ``systemctl start`` returns. Then Glimpse (who am
I; settle what a crash left): one that cannot be reached (outage, 5xx, 429) is tried again
with a growing wait, forever, while ready — ``STATUS=``, the heartbeat file and so
``glimpse-agent health`` say so, and the health turns unhealthy once the wait passes
``[ops] unhealthy_after_minutes``. A refused key (401/403) still ends the process at once.
SIGTERM/SIGINT stop new work (a start-up still talking to Glimpse is cut short), let the action
in flight finish (up to ``stop_timeout_seconds``), then exit; anything cut short stays an
unsettled intent in the ledger and is reconciled at the next start.
Every job has a deadline (``run.deadlines``): past it the action is cancelled and logged as
failed (``job_failed``, ``reason="deadline_exceeded"``; an intent it left open is reconciled at
the next start), so the lock is free for the next slot on time. A job that fires while its
previous run is still going is skipped with a ``job_skipped`` event.
``READY=1``/``WATCHDOG=1``/``STOPPING=1`` go to ``$NOTIFY_SOCKET``; the watchdog ping and the
heartbeat file are written from the event loop itself, so a wedged loop is noticed, and only
while the loop makes progress: an action still running ``stuck_grace`` after its deadline (it
ignored its cancellation) stops the pings, so systemd restarts us, and the heartbeat file says
"stuck", so the container turns unhealthy. The heartbeat file also carries the ``Vitals``
(Glimpse reachable? actions done?), rewritten at once when they change; each slot's outcome is
counted in the ``Tallies`` for the metrics. Every log line names the persona.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from glimpse_agent.agent import Outcome
from glimpse_agent.clock import Clock
from glimpse_agent.errors import RateLimited, ServiceError, StateUnwritable, Unauthorized
from glimpse_agent.ledger.storage import write_error
from glimpse_agent.logs import get_logger
from glimpse_agent.notify import (
    Heartbeat,
    SystemdNotifier,
    watchdog_interval_seconds,
    write_heartbeat,
)
from glimpse_agent.ops.tallies import Tallies
from glimpse_agent.ops.vitals import Vitals
from glimpse_agent.planner import DayPlan, Slot, schedule_slots
from glimpse_agent.run.statedir import PERMISSION_ERRNOS, permission_denied

_MINUTE = timedelta(minutes=1)
#: Seconds between start-up attempts while Glimpse is unreachable; the last one repeats.
STARTUP_BACKOFF = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0)
#: A job's deadline when the daemon is given none for its kind.
DEFAULT_DEADLINE_SECONDS = 3600.0
#: How long a cancelled action may take to end before it counts as stuck.
STUCK_GRACE_SECONDS = 60.0
#: The job kinds that are actions (a heartbeat or a re-plan is not one).
ACTION_KINDS = frozenset({"post", "engage"})


class _Action:
    """The action holding the lock: which job, since when, and until when it may run."""

    def __init__(self, name: str, since: datetime, started: float, deadline: float) -> None:
        self.name, self.since, self.started, self.deadline = name, since, started, deadline


class Schedulable(Protocol):
    """What the daemon needs from the agent."""

    async def startup(self) -> None: ...

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        """The remaining slots of every local day still open, and when to plan again."""
        ...

    async def run_slot(self, slot: Slot) -> object: ...

    async def heartbeat(self) -> None: ...


class Daemon:
    """Runs a ``Schedulable`` agent until SIGTERM/SIGINT (or ``request_stop``)."""

    def __init__(
        self,
        agent: Schedulable,
        *,
        clock: Clock,
        heartbeat_file: Path,
        heartbeat_minutes: float = 10.0,
        misfire_grace_minutes: float = 15.0,
        stop_timeout_seconds: float = 25.0,
        notifier: SystemdNotifier | None = None,
        alive_every_seconds: float = 30.0,
        startup_backoff: Sequence[float] = STARTUP_BACKOFF,
        deadline_for: Callable[[str], float] | None = None,
        stuck_grace_seconds: float = STUCK_GRACE_SECONDS,
        open_state: Callable[[], Coroutine[Any, Any, object]] | None = None,
        persona: str | None = None,
        vitals: Vitals | None = None,
        tallies: Tallies | None = None,
        handle_signals: bool = True,
    ) -> None:
        """``deadline_for(kind)`` gives the seconds a job of that kind ("post", "engage",
        "heartbeat") may run (default: an hour for every kind). ``open_state()`` opens what
        the agent keeps on disk (the ledger), before ``READY=1``; ``agent.startup()`` (Glimpse)
        runs after it. ``vitals`` and ``tallies`` are the runtime's own (fresh ones if not
        given); ``persona`` names every log line. ``handle_signals=False``: the caller owns
        SIGTERM/SIGINT and calls ``request_stop`` (a fleet hosts many daemons on one loop, and a
        loop has one handler per signal)."""
        self.agent = agent
        self.clock = clock
        self.heartbeat_file = heartbeat_file
        self.heartbeat_minutes = heartbeat_minutes
        self.grace = timedelta(minutes=misfire_grace_minutes)
        self.stop_timeout = stop_timeout_seconds
        self.notifier = notifier or SystemdNotifier()
        self.alive_every = min(alive_every_seconds, watchdog_interval_seconds() or 1e9)
        self.startup_backoff = tuple(startup_backoff) or STARTUP_BACKOFF
        self.persona = persona
        self.log = get_logger("glimpse_agent.daemon", **({"persona": persona} if persona else {}))
        self.open_state = open_state
        self.vitals = vitals or Vitals(clock)
        self.tallies = tallies or Tallies()
        self._ready = False
        # Set when the vitals change: the heartbeat file says so at once, not 30 s later.
        self._wake = asyncio.Event()
        self.vitals.on_change(self._wake.set)
        self._stop = asyncio.Event()
        self._action_lock = asyncio.Lock()
        self._in_flight: asyncio.Task[Any] | None = None
        self._jobs: set[asyncio.Task[Any]] = set()  # job coroutines started by APScheduler
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[str] = set()  # jobs fired and waiting for, or holding, the lock
        self._running_since: dict[str, datetime] = {}
        self.deadline_for = deadline_for or (lambda _kind: DEFAULT_DEADLINE_SECONDS)
        self.stuck_grace = stuck_grace_seconds
        self.handle_signals = handle_signals
        self._action: _Action | None = None
        #: Actions that outlived their deadline and ignored their cancellation.
        self._stuck: dict[asyncio.Task[Any], _Action] = {}
        self._state = "starting"
        self._healthy_at: datetime | None = None

    # ------------------------------------------------------------------ public

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def scheduled(self) -> list[tuple[str, datetime]]:
        """(job id, next run time) of every job, soonest first — for tests and `status`."""
        if self._scheduler is None:
            return []
        jobs = [(j.id, j.next_run_time) for j in self._scheduler.get_jobs() if j.next_run_time]
        return sorted(jobs, key=lambda j: j[1])

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if self.handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self._on_signal, sig)
        # Alive from the first moment: the watchdog and the heartbeat file must not wait for
        # a start-up that may be waiting for Glimpse.
        alive = asyncio.create_task(self._alive_loop(), name="alive")
        try:
            # The state first: READY=1 says the config and the state directory are sound.
            if not await self._patiently(self._open_state):
                return await self._stopped_during_startup(alive)
            self._ready = True
            self.notifier.ready()
            self.notifier.status("ready; asking Glimpse who we are")
            self.log.info(
                "state_ready",
                heartbeat_file=str(self.heartbeat_file),
                note="READY=1 sent; asking Glimpse next",
            )
            # Then Glimpse, waited for while ready.
            self.vitals.waiting("Glimpse")
            if not await self._patiently(self.agent.startup):
                return await self._stopped_during_startup(alive)
            self.vitals.waiting(None)
            self.vitals.glimpse_answered()
            self._scheduler = AsyncIOScheduler(
                timezone=UTC,
                job_defaults={
                    "misfire_grace_time": int(self.grace.total_seconds()),
                    "coalesce": True,
                    # Our guard skips a job whose previous run is still going, and says so in
                    # our own log line; APScheduler's own limit would say it in plain text.
                    "max_instances": 100,
                },
            )
            self._scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
            # Its warnings (missed, skipped) are ours now, as JSON events; errors still show.
            logging.getLogger("apscheduler").setLevel(logging.ERROR)
            self._scheduler.start()
            # The first plan writes the ledger: a full disk is waited out here too.
            if not await self._patiently(self._replan):
                return await self._stopped_during_startup(alive)
            self._scheduler.add_job(
                self._guard("heartbeat", self.agent.heartbeat, kind="heartbeat"),
                IntervalTrigger(minutes=self.heartbeat_minutes, timezone=UTC),
                id="heartbeat",
            )
            self._state = "running"
            self._wake.set()
            self.notifier.status("running")
            self.log.info("daemon_ready", jobs=[j for j, _ in self.scheduled])
            await self._stop.wait()
            return await self._shutdown(alive)
        except Unauthorized as exc:
            self.notifier.status(f"stopped: Glimpse refused the key ({exc.status})")
            self._say_stopping()
            raise
        finally:
            if not alive.done():  # start-up raised: nothing else will stop it
                alive.cancel()
                await asyncio.wait({alive}, timeout=5)
            self._state = "stopped"
            # The last word for `health`: we are gone. Written here, without yielding to the
            # loop, so that no job the scheduler still holds starts in between.
            with contextlib.suppress(OSError):
                write_heartbeat(self.heartbeat_file, self.beat())
            for sig in signals:
                loop.remove_signal_handler(sig)

    def beat(self) -> Heartbeat:
        """The heartbeat as of now: the loop's state and progress, the running action, the
        vitals. What the file says (written every turn of the alive loop) and what ``/healthz``
        judges."""
        state, action, since = self.health
        now = self.clock.now()
        return self.vitals.stamp(
            Heartbeat(
                at=self._healthy_at or now,
                state=state,
                action=action,
                action_since=since,
                written_at=now,
                persona=self.persona,
                pid=os.getpid(),
            )
        )

    @property
    def health(self) -> tuple[str, str | None, datetime | None]:
        """(state, running action, since when): "starting", "running", "stopping", or "stuck"
        when an action runs on past its deadline and grace — the loop makes no progress."""
        if self._state == "stopped":
            return "stopped", None, None
        now = asyncio.get_running_loop().time()
        for task, stuck in self._stuck.items():
            if not task.done():
                return "stuck", stuck.name, stuck.since
        action = self._action
        if action is not None and now - action.started > action.deadline + self.stuck_grace:
            return "stuck", action.name, action.since
        return self._state, action.name if action else None, action.since if action else None

    # ------------------------------------------------------------------ internals

    async def _open_state(self) -> None:
        """Open what the agent keeps on disk, then prove the state directory takes a write
        (the heartbeat file, replaced atomically as every ledger write is)."""
        if self.open_state is not None:
            await self.open_state()
        try:
            await asyncio.to_thread(write_heartbeat, self.heartbeat_file, self.beat())
        except OSError as exc:
            if exc.errno in PERMISSION_ERRNOS:
                raise permission_denied(self.heartbeat_file) from None
            raise write_error(exc, f"the heartbeat file {self.heartbeat_file}") from None

    async def _patiently(self, step: Callable[[], Coroutine[Any, Any, object]]) -> bool:
        """``step()`` (the state; then start-up: who am I, reconcile; then the first plan)
        until it succeeds (True) or a stop comes (False). A failure that may pass (Glimpse
        down, 5xx, 429; a state directory that is full or read-only) waits and tries again; any
        other error raises, a permission refused on the state directory included. A Glimpse
        that answers slowly must not keep SIGTERM waiting, so a stop cuts an attempt short;
        that is safe: the intents it did not settle stay open."""
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            try:
                done = await self._unless_stopped(step())
                if done:
                    self.vitals.waiting(None)
                return done
            except (ServiceError, StateUnwritable) as exc:
                if isinstance(exc, ServiceError) and not exc.retryable:
                    raise
                if isinstance(exc, StateUnwritable) and exc.errno in PERMISSION_ERRNOS:
                    raise permission_denied(self.heartbeat_file.parent) from exc
                wait = self.startup_backoff[min(attempt, len(self.startup_backoff)) - 1]
                if isinstance(exc, RateLimited) and exc.retry_after:
                    wait = max(wait, exc.retry_after)
                waiting_for = (
                    "the state directory" if isinstance(exc, StateUnwritable) else "Glimpse"
                )
                self.vitals.waiting(waiting_for)
                if isinstance(exc, ServiceError) and not isinstance(exc, RateLimited):
                    self.vitals.glimpse_failed(str(exc))
                self.log.warning(
                    "startup_retry",
                    attempt=attempt,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    waiting_for=waiting_for,
                    retry_in_s=wait,
                )
                self.notifier.status(
                    f"waiting for {waiting_for} (attempt {attempt}, next in {wait:.0f} s): {exc}"[
                        :200
                    ]
                )
                if not self._ready:  # only start-up has a timeout to extend
                    self.notifier.extend_timeout(wait + 120)
                if not await self._unless_stopped(asyncio.sleep(wait)):
                    return False
        return False

    async def _stopped_during_startup(self, alive: asyncio.Task[None]) -> int:
        self._say_stopping()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler.remove_all_jobs()
        alive.cancel()
        await asyncio.wait({alive}, timeout=5)
        self.log.info("daemon_stopped", during="startup")
        return 0

    async def _unless_stopped(self, work: Coroutine[Any, Any, object]) -> bool:
        """Run ``work`` unless a stop comes first: True if it finished (its error raises),
        False if the stop won and ``work`` was cancelled."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return False
        task.result()
        return not self._stop.is_set()

    def _on_signal(self, sig: signal.Signals) -> None:
        self.log.info("stop_requested", signal=sig.name)
        self._stop.set()

    def _say_stopping(self) -> None:
        """STOPPING=1, and no watchdog ping after it (the alive loop reads the state)."""
        self._state = "stopping"
        self.notifier.stopping()

    async def _shutdown(self, alive: asyncio.Task[None]) -> int:
        self._say_stopping()
        if self._scheduler is not None:
            # No new job from now on; shut down only once the queued ones have ended (below).
            self._scheduler.pause()
        in_flight = self._in_flight
        if in_flight is not None and not in_flight.done():
            self.log.info("waiting_for_action_in_flight", timeout_s=self.stop_timeout)
            done, _ = await asyncio.wait({in_flight}, timeout=self.stop_timeout)
            if not done:
                # The intent stays unsettled in the ledger; the next start reconciles it.
                self.log.warning("action_cancelled_at_stop")
                in_flight.cancel()
                await asyncio.wait({in_flight}, timeout=self.stuck_grace)
        for task in [t for t in self._stuck if not t.done()]:
            task.cancel()  # once more; if it still will not end, the process ends without it
        # Jobs still queued behind the action lock see the stop and return at once: let them,
        # rather than have the loop's end cancel them mid-await. A job APScheduler has just
        # handed to the loop has not started yet: a few turns of the loop let it start, see the
        # stop and end (cancelled unstarted, by the scheduler's shutdown, it is logged as a
        # crashed job).
        for _ in range(5):
            await asyncio.sleep(0)
        queued = {t for t in self._jobs if not t.done() and t is not asyncio.current_task()}
        if queued:
            await asyncio.wait(queued, timeout=2)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        alive.cancel()
        await asyncio.wait({alive}, timeout=5)  # bounded: a stop must never wait for ever
        self.log.info("daemon_stopped")
        return 0

    async def _alive_loop(self) -> None:
        """Feed the watchdog and the heartbeat file while the loop makes progress; while an
        action is stuck, starve the watchdog (systemd restarts us) and say "stuck" in the file
        (whose ``at`` then stops advancing). A change of the vitals rewrites the file at once."""
        was = "starting"
        while True:
            # Cleared before the beat is made: a change while it is written wakes the next turn.
            self._wake.clear()
            state, action, since = self.health
            now = self.clock.now()
            if state not in ("stuck", "stopping"):
                # Once STOPPING=1 is sent, systemd's stop timeout is what counts; a ping after
                # it would read as a service that took the stop back.
                self.notifier.watchdog()
            if state != "stuck":
                self._healthy_at = now
            if state != was:
                if state == "stuck":
                    self.log.error(
                        "daemon_stuck",
                        job=action,
                        since=since.isoformat() if since else None,
                        note="an action outlived its deadline and its cancellation; the "
                        "watchdog is no longer fed",
                    )
                    self.notifier.status(f"stuck: {action} running since {since}"[:200])
                elif was == "stuck":
                    self.log.info("daemon_unstuck")
                    self.notifier.status(state)
                was = state
            try:
                await asyncio.to_thread(write_heartbeat, self.heartbeat_file, self.beat())
            except OSError as exc:
                # Identical repeats (a disk that stays full) are rate-limited by the logger.
                self.log.warning("heartbeat_file_failed", error=str(exc))
            # asyncio.timeout, not wait_for: on Python 3.11 a cancel that lands while wait_for
            # handles its own timeout comes out as TimeoutError, the loop went on, and the stop
            # that cancelled it waited for ever (found as a hung test under load).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.alive_every):
                    await self._wake.wait()

    def _guard(
        self,
        name: str,
        fn: Callable[..., Coroutine[Any, Any, object]],
        *args: Any,
        kind: str = "",
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        """Wrap a job: one action at a time, never after stop, never past its deadline, never
        raising into APScheduler."""

        async def job() -> None:
            if self._stop.is_set():
                return
            if name in self._running:
                since = self._running_since.get(name)
                self.log.warning(
                    "job_skipped",
                    job=name,
                    reason="its previous run is still running or waiting for the action lock",
                    running_since=since.isoformat() if since else None,
                )
                return
            me = asyncio.current_task()
            if me is not None:
                self._jobs.add(me)
            # From now until it ends the job is in no job store: remember it is on its way.
            self._running.add(name)
            self._running_since[name] = self.clock.now()
            try:
                await locked()
            except asyncio.CancelledError:
                if not self._stop.is_set():
                    raise
                # Stopping: the job is given up (an intent it opened stays for the next start
                # to reconcile). End quietly: APScheduler would log a cancellation as a crash.
            finally:
                self._running.discard(name)
                self._running_since.pop(name, None)
                if me is not None:
                    self._jobs.discard(me)

        async def locked() -> None:
            async with self._action_lock:
                if self._stop.is_set():
                    return
                deadline = self.deadline_for(kind or name)
                task: asyncio.Task[object] = asyncio.create_task(fn(*args), name=name)
                self._in_flight = task
                action = _Action(
                    name, self.clock.now(), asyncio.get_running_loop().time(), deadline
                )
                self._action = action
                try:
                    # Waiting does not cancel the task when we are cancelled: a stop lets the
                    # action finish (see ``_shutdown``).
                    done, _ = await asyncio.wait({task}, timeout=deadline)
                    if not done:
                        await self._past_deadline(action, task)
                        self._action_failed(kind, f"still running after {deadline:g} s")
                    elif task.cancelled():
                        if not self._stop.is_set():
                            self.log.error("job_failed", job=name, error="cancelled")
                            self._action_failed(kind, "cancelled")
                    elif (exc := task.exception()) is not None:
                        self.log.error(
                            "job_failed", job=name, error=str(exc), error_type=type(exc).__name__
                        )
                        self._action_failed(kind, str(exc) or type(exc).__name__)
                finally:
                    if task.done() or task in self._stuck:
                        self._in_flight = None
                    self._action = None

        return job

    async def _past_deadline(self, action: _Action, task: asyncio.Task[object]) -> None:
        """Cancel an action past its deadline, so the lock is free for the next slot. One that
        ignores its cancellation is left behind as stuck (health says so until it ends)."""
        self.log.error(
            "job_failed",
            job=action.name,
            reason="deadline_exceeded",
            error=f"still running after its deadline of {action.deadline:g} s; cancelled",
            error_type="DeadlineExceeded",
            started_at=action.since.isoformat(),
        )
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=self.stuck_grace)
        if done:
            if not task.cancelled():
                task.exception()  # retrieved: its error, if any, is the cancellation's echo
            return
        self._stuck[task] = action
        task.add_done_callback(self._stuck_ended)
        self.log.error(
            "action_stuck",
            job=action.name,
            started_at=action.since.isoformat(),
            note="it ignored its cancellation; the next jobs run, health says stuck until it ends",
        )

    def _stuck_ended(self, task: asyncio.Task[Any]) -> None:
        action = self._stuck.pop(task, None)
        if not task.cancelled():
            task.exception()
        if action is not None:
            self.log.warning("stuck_action_ended", job=action.name)

    def _on_missed(self, event: JobExecutionEvent) -> None:
        """APScheduler's "was missed" warning, as our own event (its own is plain text)."""
        self.log.warning(
            "job_missed",
            job=event.job_id,
            scheduled_for=event.scheduled_run_time.isoformat()
            if event.scheduled_run_time
            else None,
            grace_minutes=self.grace / _MINUTE,
        )

    async def _replan(self) -> None:
        assert self._scheduler is not None
        plans, next_plan_at = await self.agent.plan_day(self.clock.now())
        now = self.clock.now()
        # A slot that is running, or already waiting for its time (a planned retry), is not the
        # plan's to move: rescheduling it would run it again at once, before its retry time.
        pending = {job.id for job in self._scheduler.get_jobs()} | self._running
        decided = schedule_slots(plans, now=now, grace=self.grace, pending=pending)
        for run in decided.runs:
            assert run.run_at is not None
            self._schedule_slot(run.slot, run.run_at)
        self._schedule_replan(next_plan_at)
        missed = {s.slot_id for s in decided.missed}
        if missed:
            self.log.warning(
                "slots_missed",
                slots=[s.slot_id for s in decided.missed],
                grace_minutes=self.grace / _MINUTE,
            )
        self.log.info(
            "day_planned",
            days=[str(p.local_day) for p in plans],
            slots=[
                (s.slot_id, s.at.isoformat())
                for p in plans
                for s in p.slots
                if s.slot_id not in missed
            ],
            next_plan_at=next_plan_at.isoformat(),
        )

    def _schedule_slot(self, slot: Slot, at: datetime) -> None:
        assert self._scheduler is not None
        self._scheduler.add_job(
            self._guard(slot.slot_id, self._run_slot, slot, kind=slot.kind),
            DateTrigger(run_date=at, timezone=UTC),
            id=slot.slot_id,
            replace_existing=True,
        )

    def _action_failed(self, kind: str, why: str) -> None:
        if kind in ACTION_KINDS:
            self.tallies.record_error(kind)
            self.vitals.action_failed(why)

    async def _run_slot(self, slot: Slot) -> None:
        """The slot, and its retry when the agent planned one (a post that failed for a
        reason that passes): the same slot again at ``retry_at``. Its outcome is counted, and
        tells the vitals whether anything could be done."""
        outcome = await self.agent.run_slot(slot)
        if isinstance(outcome, Outcome):
            self.tallies.record_outcome(outcome)
            if outcome.ok and outcome.detail != "already done":
                self.vitals.action_done()
            elif not outcome.ok:
                self.vitals.action_failed(f"{outcome.kind}: {outcome.detail or 'failed'}")
        retry_at = getattr(outcome, "retry_at", None)
        if isinstance(retry_at, datetime) and not self._stop.is_set():
            self._schedule_slot(slot, retry_at)

    def _schedule_replan(self, at: datetime) -> None:
        """The re-plan job runs however late it fires (a suspended host, a busy loop): without
        it the daemon would never plan another day."""
        assert self._scheduler is not None
        self._scheduler.add_job(
            self._replan_job,
            DateTrigger(run_date=at, timezone=UTC),
            id="plan",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _replan_job(self) -> None:
        try:
            await self._replan()
        except Exception as exc:
            # Never lose the re-plan job: try again in a few minutes.
            self.log.error("plan_failed", error=str(exc))
            self._schedule_replan(self.clock.now() + timedelta(minutes=5))
