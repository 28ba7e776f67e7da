"""The daemon loop: due slots run once, actions never overlap, a stop lets the action in flight
finish (up to the stop timeout), and a failing job never kills the loop."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from glimpse_agent.agent import Outcome
from glimpse_agent.clock import SystemClock
from glimpse_agent.errors import Unauthorized, Unavailable
from glimpse_agent.notify import SystemdNotifier, heartbeat_healthy, read_heartbeat
from glimpse_agent.planner import DayPlan, Slot
from glimpse_agent.run.daemon import Daemon


class ScriptedAgent:
    """Our own Schedulable: slots due now or soon, each taking ``work`` seconds."""

    def __init__(self, slots: list[Slot], *, work: float = 0.0, fail: bool = False) -> None:
        self.slots = slots
        self.work = work
        self.fail = fail
        self.ran: list[str] = []
        self.finished: list[str] = []
        self.running = 0
        self.max_running = 0
        self.started = asyncio.Event()

    async def startup(self) -> None:
        return None

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        return [DayPlan(date.today(), tuple(self.slots))], now + timedelta(hours=6)

    async def run_slot(self, slot: Slot) -> object:
        self.ran.append(slot.slot_id)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.started.set()
        try:
            await asyncio.sleep(self.work)
            if self.fail:
                raise RuntimeError("boom")
            self.finished.append(slot.slot_id)
        finally:
            self.running -= 1
        return None

    async def heartbeat(self) -> None:
        return None


def _daemon(agent: ScriptedAgent, tmp: Path, *, stop_timeout: float = 5.0) -> Daemon:
    return Daemon(
        agent,
        clock=SystemClock(),
        heartbeat_file=tmp / "heartbeat",
        stop_timeout_seconds=stop_timeout,
        alive_every_seconds=0.05,
    )


def _slots(*offsets: float, kind: str = "engage") -> list[Slot]:
    now = datetime.now(UTC)
    return [
        Slot(f"d/{kind}/{i}", kind, now + timedelta(seconds=o))  # type: ignore[arg-type]
        for i, o in enumerate(offsets, 1)
    ]


async def test_due_slots_run_once_and_never_overlap(tmp_path: Path) -> None:
    """Two slots due at the same moment both run, one after the other, once each."""
    agent = ScriptedAgent(_slots(0.05, 0.05), work=0.1)
    daemon = _daemon(agent, tmp_path)
    task = asyncio.create_task(daemon.run())
    for _ in range(100):
        if len(agent.finished) == 2:
            break
        await asyncio.sleep(0.02)
    daemon.request_stop()
    assert await _stopped(task) == 0
    assert sorted(agent.finished) == ["d/engage/1", "d/engage/2"]
    assert agent.max_running == 1
    assert (tmp_path / "heartbeat").is_file()


async def test_stop_lets_the_action_in_flight_finish(tmp_path: Path) -> None:
    """A stop request during an action waits for it to complete instead of cutting it."""
    agent = ScriptedAgent(_slots(0.0), work=0.5)
    daemon = _daemon(agent, tmp_path)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(agent.started.wait(), 5)
    daemon.request_stop()
    assert await _stopped(task) == 0
    assert agent.finished == ["d/engage/1"]


async def test_stop_timeout_cancels_a_stuck_action(tmp_path: Path) -> None:
    """An action that outlives the stop timeout is cancelled so the process still exits."""
    agent = ScriptedAgent(_slots(0.0), work=30)
    daemon = _daemon(agent, tmp_path, stop_timeout=0.3)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(agent.started.wait(), 5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    daemon.request_stop()
    assert await asyncio.wait_for(task, 5) == 0
    assert loop.time() - t0 < 2
    assert agent.finished == []


async def test_a_failing_job_does_not_stop_the_daemon(tmp_path: Path) -> None:
    """A job that raises is logged; later jobs still run."""
    agent = ScriptedAgent(_slots(0.0, 0.2), fail=True)
    daemon = _daemon(agent, tmp_path)
    task = asyncio.create_task(daemon.run())
    for _ in range(100):
        if len(agent.ran) == 2:
            break
        await asyncio.sleep(0.02)
    daemon.request_stop()
    assert await _stopped(task) == 0
    assert agent.ran == ["d/engage/1", "d/engage/2"]


async def test_scheduled_jobs_include_slots_replan_and_heartbeat(tmp_path: Path) -> None:
    """Future slots, the next re-plan and the heartbeat are all scheduled after start."""
    agent = ScriptedAgent(_slots(3600, kind="post"))
    daemon = _daemon(agent, tmp_path)
    task = asyncio.create_task(daemon.run())
    for _ in range(100):
        if daemon.scheduled:
            break
        await asyncio.sleep(0.02)
    ids = [job for job, _ in daemon.scheduled]
    daemon.request_stop()
    assert await _stopped(task) == 0
    assert {"d/post/1", "plan", "heartbeat"} <= set(ids)


class ReplanningAgent(ScriptedAgent):
    """Hands out one plan per call of ``plan_day``, each naming when to plan again."""

    def __init__(self, plans: list[tuple[list[Slot], timedelta]]) -> None:
        super().__init__([])
        self.plans = plans
        self.planned = 0

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        slots, again = self.plans[min(self.planned, len(self.plans) - 1)]
        self.planned += 1
        return [DayPlan(date.today(), tuple(slots))], now + again


async def _stopped(task: asyncio.Task[int], seconds: float = 60.0) -> int:
    """The daemon's exit code once it has stopped; a daemon that does not stop within
    ``seconds`` fails the test with every task's stack (a hang must say where, not wedge the
    suite)."""
    try:
        return await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        stacks = io.StringIO()
        for other in asyncio.all_tasks():
            other.print_stack(file=stacks)
        task.cancel()
        pytest.fail(f"the daemon did not stop within {seconds} s:\n{stacks.getvalue()}")


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)


async def test_a_late_slot_runs_once_and_yesterdays_never(tmp_path: Path) -> None:
    """Within the misfire grace a late slot still runs, once; a slot from yesterday does not."""
    now = datetime.now(UTC)
    late = Slot("today/post/1", "post", now - timedelta(minutes=5))
    stale = Slot("yesterday/post/1", "post", now - timedelta(days=1))
    agent = ScriptedAgent([stale, late])
    daemon = _daemon(agent, tmp_path)  # misfire grace: 15 minutes
    task = asyncio.create_task(daemon.run())
    await _until(lambda: bool(agent.finished))
    ids = [job for job, _ in daemon.scheduled]
    daemon.request_stop()
    assert await _stopped(task) == 0
    assert agent.ran == ["today/post/1"]
    assert "yesterday/post/1" not in ids


async def test_the_daemon_plans_again_and_runs_the_next_days_slots(tmp_path: Path) -> None:
    """The re-plan job fires when the plan says (local midnight) and schedules the new slots;
    one that fires late (the host slept through midnight) still re-plans."""
    now = datetime.now(UTC)
    agent = ReplanningAgent(
        [
            ([], timedelta(hours=-1)),  # "plan again an hour ago": a re-plan that misfired
            ([Slot("next/engage/1", "engage", now)], timedelta(hours=6)),
        ]
    )
    daemon = _daemon(agent, tmp_path)
    task = asyncio.create_task(daemon.run())
    await _until(lambda: bool(agent.finished))
    daemon.request_stop()
    assert await _stopped(task) == 0
    assert agent.planned == 2
    assert agent.finished == ["next/engage/1"]


class SlowStartAgent(ScriptedAgent):
    """An agent whose start-up (``me``, reconcile) hangs, as against a Glimpse that stalls."""

    async def startup(self) -> None:
        self.started.set()
        await asyncio.sleep(3600)


async def test_a_stop_during_a_hanging_startup_exits_at_once(tmp_path: Path) -> None:
    """SIGTERM while start-up waits on Glimpse stops the daemon without waiting it out, and
    nothing is scheduled or run."""
    agent = SlowStartAgent(_slots(0.0))
    daemon = _daemon(agent, tmp_path)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(agent.started.wait(), 5)
    daemon.request_stop()
    assert await asyncio.wait_for(task, 10) == 0
    assert agent.ran == []
    assert daemon.scheduled == []


class RecordingNotifier(SystemdNotifier):
    """The sd_notify messages the daemon sends, in order (no socket needed)."""

    def __init__(self) -> None:
        super().__init__(address="")
        self.sent: list[str] = []

    def notify(self, message: str) -> bool:
        self.sent.append(message)
        return True


class FlakyStartAgent(ScriptedAgent):
    """Start-up fails with ``error`` the first ``failures`` times (None: every time)."""

    def __init__(self, slots: list[Slot], error: Exception, failures: int | None) -> None:
        super().__init__(slots)
        self.error, self.failures, self.attempts = error, failures, 0

    async def startup(self) -> None:
        self.attempts += 1
        if self.failures is None or self.attempts <= self.failures:
            raise self.error


def _patient_daemon(agent: ScriptedAgent, tmp: Path, backoff: tuple[float, ...]) -> Daemon:
    return Daemon(
        agent,
        clock=SystemClock(),
        heartbeat_file=tmp / "heartbeat",
        notifier=RecordingNotifier(),
        alive_every_seconds=0.05,
        startup_backoff=backoff,
    )


async def test_an_unreachable_glimpse_at_start_is_waited_for_not_exited_on(
    tmp_path: Path,
) -> None:
    """Glimpse down at start: the daemon says READY first (config and state are sound, so
    `systemctl start` returns), then tries Glimpse again after each wait while ready, saying so
    in STATUS= (no start-up timeout is left to extend), then runs its slots."""
    down = Unavailable("cannot reach Glimpse", service="glimpse")
    agent = FlakyStartAgent(_slots(0.0), down, failures=2)
    daemon = _patient_daemon(agent, tmp_path, (0.01,))
    with capture_logs() as logs:
        task = asyncio.create_task(daemon.run())
        for _ in range(200):
            if agent.finished:
                break
            await asyncio.sleep(0.02)
        daemon.request_stop()
        assert await _stopped(task) == 0
    assert agent.attempts == 3 and agent.finished == ["d/engage/1"]
    retries = [e for e in logs if e["event"] == "startup_retry"]
    assert [e["attempt"] for e in retries] == [1, 2]
    sent = daemon.notifier.sent  # type: ignore[attr-defined]
    waits = [i for i, m in enumerate(sent) if m.startswith("STATUS=waiting for Glimpse")]
    assert len(waits) == 2 and sent.index("READY=1") < min(waits)
    assert not any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in sent)
    assert sent[waits[1]].startswith("STATUS=waiting for Glimpse (attempt 2")
    assert sent.index("STATUS=running") > max(waits)
    assert (tmp_path / "heartbeat").is_file()  # alive while it waited


async def test_a_stop_during_the_start_up_wait_exits_at_once(tmp_path: Path) -> None:
    """SIGTERM while start-up waits for Glimpse: exit 0 now, STOPPING last (READY came
    before, once the state was sound)."""
    agent = FlakyStartAgent([], Unavailable("503", service="glimpse"), failures=None)
    daemon = _patient_daemon(agent, tmp_path, (60.0,))
    task = asyncio.create_task(daemon.run())
    for _ in range(100):
        if agent.attempts:
            break
        await asyncio.sleep(0.02)
    daemon.request_stop()
    assert await asyncio.wait_for(task, 5) == 0
    sent = daemon.notifier.sent  # type: ignore[attr-defined]
    assert agent.attempts == 1 and sent[-1] == "STOPPING=1"
    assert sent.index("READY=1") < sent.index("STOPPING=1")


async def test_a_refused_key_at_start_is_not_retried(tmp_path: Path) -> None:
    """A 401 at start-up cannot get better by waiting: it raises at once (the CLI exits 5),
    and systemd is told why and that we stop."""
    refused = Unauthorized("401 invalid key", service="glimpse", status=401)
    agent = FlakyStartAgent([], refused, failures=None)
    daemon = _patient_daemon(agent, tmp_path, (0.01,))
    with pytest.raises(Unauthorized):
        await asyncio.wait_for(daemon.run(), 5)
    assert agent.attempts == 1
    sent = daemon.notifier.sent  # type: ignore[attr-defined]
    assert "STATUS=stopped: Glimpse refused the key (401)" in sent
    assert sent[-1] == "STOPPING=1"
    assert read_heartbeat(tmp_path / "heartbeat").state == "stopped"  # type: ignore[union-attr]


class RetryOnceAgent(ScriptedAgent):
    """Its slot fails once with a retry asked for ``retry_in`` seconds later, then succeeds."""

    def __init__(self, slots: list[Slot], retry_in: float) -> None:
        super().__init__(slots)
        self.retry_in = retry_in
        self.runs_at: list[datetime] = []

    async def run_slot(self, slot: Slot) -> object:
        self.runs_at.append(datetime.now(UTC))
        await super().run_slot(slot)
        if len(self.runs_at) == 1:
            return Outcome(
                "post",
                False,
                "image failed",
                retry_at=self.runs_at[0] + timedelta(seconds=self.retry_in),
            )
        return Outcome("post", True)


async def test_a_slot_the_agent_wants_retried_runs_again_at_its_time(tmp_path: Path) -> None:
    """An outcome with retry_at puts the same slot back on the schedule for then."""
    agent = RetryOnceAgent(_slots(0.0, kind="post"), retry_in=0.3)
    daemon = _daemon(agent, tmp_path)
    task = asyncio.create_task(daemon.run())
    for _ in range(200):
        if len(agent.runs_at) == 2:
            break
        await asyncio.sleep(0.02)
    daemon.request_stop()
    assert await _stopped(task) == 0
    assert agent.ran == ["d/post/1", "d/post/1"]
    assert agent.runs_at[1] - agent.runs_at[0] >= timedelta(seconds=0.29)


class RetryThenReplanAgent(RetryOnceAgent):
    """Its slot fails once and asks for a retry a minute later; it plans again (the same, not
    yet done slot, as a re-plan at local midnight would) soon after the failure."""

    def __init__(self, slots: list[Slot]) -> None:
        super().__init__(slots, retry_in=60.0)
        self.planned = 0

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        self.planned += 1
        again = timedelta(seconds=0.2) if self.planned == 1 else timedelta(hours=6)
        return [DayPlan(date.today(), tuple(self.slots))], now + again


async def test_a_replan_keeps_a_planned_retry_at_its_time(tmp_path: Path) -> None:
    """A re-plan while a post slot waits for its retry neither runs it again at once nor moves
    its retry."""
    agent = RetryThenReplanAgent(_slots(0.0, kind="post"))
    daemon = _daemon(agent, tmp_path)
    task = asyncio.create_task(daemon.run())
    await _until(lambda: agent.planned >= 2)
    await _until(lambda: len(agent.ran) >= 2)
    jobs = dict(daemon.scheduled)
    daemon.request_stop()
    assert await _stopped(task) == 0
    assert agent.planned == 2
    assert agent.ran == ["d/post/1"]
    assert jobs["d/post/1"] == agent.runs_at[0] + timedelta(seconds=60)


async def test_a_stop_with_jobs_queued_behind_the_action_is_quiet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM while one action runs and two more wait for it: the action finishes, the two
    never start, and nothing is logged as an error (no job 'raised an exception')."""
    caplog.set_level(logging.INFO)
    agent = ScriptedAgent(_slots(0.0, 0.0, 0.0), work=0.3)
    daemon = _daemon(agent, tmp_path)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(agent.started.wait(), 5)
    daemon.request_stop()
    assert await _stopped(task) == 0
    assert len(agent.ran) == 1 and agent.finished == agent.ran
    errors = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_late_slots_run_in_their_planned_order(tmp_path: Path) -> None:
    """Slots already due at start run one after the other in the order they were planned,
    not in the order of their ids ("engage/2" before "post/1")."""
    now = datetime.now(UTC)
    slots = [
        Slot("d/engage/1", "engage", now - timedelta(seconds=30)),
        Slot("d/post/1", "post", now - timedelta(seconds=20)),
        Slot("d/engage/2", "engage", now - timedelta(seconds=10)),
    ]
    agent = ScriptedAgent(slots)
    daemon = _daemon(agent, tmp_path)
    task = asyncio.create_task(daemon.run())
    for _ in range(100):
        if len(agent.finished) == 3:
            break
        await asyncio.sleep(0.02)
    daemon.request_stop()
    assert await _stopped(task) == 0
    assert agent.ran == ["d/engage/1", "d/post/1", "d/engage/2"]


class HangingAgent(ScriptedAgent):
    """Its first slot never ends (a reply whose body never finishes); the others are quick.
    With ``stubborn`` the hang also ignores its cancellation until ``release`` is set."""

    def __init__(self, slots: list[Slot], *, stubborn: bool = False) -> None:
        super().__init__(slots)
        self.stubborn = stubborn
        self.release = asyncio.Event()
        self.cancelled: list[str] = []
        self.started_at: dict[str, float] = {}

    async def run_slot(self, slot: Slot) -> object:
        self.started_at[slot.slot_id] = asyncio.get_running_loop().time()
        if slot is not self.slots[0]:
            return await super().run_slot(slot)
        self.ran.append(slot.slot_id)
        self.started.set()
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.append(slot.slot_id)
                if not self.stubborn:
                    raise
        return None


async def test_a_job_past_its_deadline_is_cancelled_and_the_next_slot_runs_on_time(
    tmp_path: Path,
) -> None:
    """A slot that hangs is cancelled at its deadline and logged as failed in one event; the
    slot due after it runs at its own time instead of waiting behind the lock forever."""
    agent = HangingAgent(_slots(0.0, 0.6))
    loop = asyncio.get_running_loop()
    daemon = Daemon(
        agent,
        clock=SystemClock(),
        heartbeat_file=tmp_path / "heartbeat",
        alive_every_seconds=0.05,
        deadline_for=lambda kind: 0.3,
    )
    t0 = loop.time()
    with capture_logs() as logs:
        task = asyncio.create_task(daemon.run())
        await _until(lambda: len(agent.finished) == 1)
        daemon.request_stop()
        assert await asyncio.wait_for(task, 10) == 0
    assert agent.cancelled == ["d/engage/1"]
    assert agent.finished == ["d/engage/2"]
    # Due 0.6 s after start; without the deadline it would never have run.
    assert agent.started_at["d/engage/2"] - t0 < 3.0
    failed = [e for e in logs if e["event"] == "job_failed"]
    assert len(failed) == 1
    assert failed[0]["job"] == "d/engage/1" and failed[0]["reason"] == "deadline_exceeded"


async def test_the_heartbeat_says_stuck_and_the_watchdog_starves_while_an_action_is_stuck(
    tmp_path: Path,
) -> None:
    """An action that ignores its cancellation past its deadline and grace: the watchdog is
    no longer fed, the heartbeat file says "stuck" (unhealthy, naming the action) and its
    last-healthy time stops; once the action ends, both are fed again."""
    agent = HangingAgent(_slots(0.0), stubborn=True)
    heartbeat = tmp_path / "heartbeat"
    daemon = Daemon(
        agent,
        clock=SystemClock(),
        heartbeat_file=heartbeat,
        notifier=RecordingNotifier(),
        alive_every_seconds=0.05,
        deadline_for=lambda kind: 0.2,
        stuck_grace_seconds=0.2,
    )
    sent: list[str] = daemon.notifier.sent  # type: ignore[attr-defined]
    task = asyncio.create_task(daemon.run())
    try:
        await _stuck_then_released(agent, daemon, heartbeat, sent)
    finally:
        agent.release.set()  # a stubborn task would otherwise outlive the test's loop
    daemon.request_stop()
    assert await asyncio.wait_for(task, 10) == 0


async def _stuck_then_released(
    agent: HangingAgent, daemon: Daemon, heartbeat: Path, sent: list[str]
) -> None:
    await _until(lambda: "READY=1" in sent)
    await _until(lambda: getattr(read_heartbeat(heartbeat), "state", "") == "running")
    beat = read_heartbeat(heartbeat)
    assert beat is not None and beat.state == "running" and heartbeat_healthy(heartbeat)
    await _until(lambda: getattr(read_heartbeat(heartbeat), "state", "") == "stuck")
    stuck = read_heartbeat(heartbeat)
    assert stuck is not None and stuck.state == "stuck" and stuck.action == "d/engage/1"
    assert not heartbeat_healthy(heartbeat)
    pings = sent.count("WATCHDOG=1")
    await asyncio.sleep(0.4)
    later = read_heartbeat(heartbeat)
    assert later is not None and later.state == "stuck" and later.at == stuck.at
    assert later.written_at is not None and stuck.written_at is not None
    assert later.written_at > stuck.written_at  # still written, saying so
    assert sent.count("WATCHDOG=1") == pings
    agent.release.set()
    await _until(lambda: heartbeat_healthy(heartbeat))
    assert getattr(read_heartbeat(heartbeat), "state", "") == "running"
    assert sent.count("WATCHDOG=1") > pings


class SlowHeartbeatAgent(ScriptedAgent):
    async def heartbeat(self) -> None:
        await asyncio.sleep(0.5)


async def test_a_job_whose_previous_run_is_still_going_is_skipped_with_our_own_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The Glimpse heartbeat fires again while its last run still goes: skipped, said in our
    own structured event, not in APScheduler's plain-text warning."""
    caplog.set_level(logging.WARNING)
    agent = SlowHeartbeatAgent([])
    daemon = Daemon(
        agent,
        clock=SystemClock(),
        heartbeat_file=tmp_path / "heartbeat",
        heartbeat_minutes=0.2 / 60,
        alive_every_seconds=0.05,
    )
    with capture_logs() as logs:
        task = asyncio.create_task(daemon.run())
        await _until(lambda: any(e["event"] == "job_skipped" for e in logs))
        daemon.request_stop()
        assert await asyncio.wait_for(task, 10) == 0
    skipped = [e for e in logs if e["event"] == "job_skipped"]
    assert skipped and skipped[0]["job"] == "heartbeat" and skipped[0]["running_since"]
    assert not [r for r in caplog.records if "maximum number" in r.getMessage()]
