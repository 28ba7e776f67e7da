"""Many personas in one process: ``glimpse-agent run -c a.toml -c b.toml`` or ``--fleet DIR``.

Design. Each persona is a ``Member``: its own ``Daemon`` (the same loop as a single ``run``:
its own APScheduler, action lock, deadlines, stuck detection, misfire grace), its own runtime
(ledger and its lock, quotas, breakers, budget, keys), all on one event loop. What they share is
what holds no one's secret: the process, the loop, and one ``httpx.AsyncClient`` (one connection
pool, one SSL context; the pool keeps connections per host). Every adapter sends its own key and
timeout with each request, the shared client keeps no cookies, and a persona's key never enters
it. One scheduler per persona rather than one for all: an ``AsyncIOScheduler`` costs a timer
handle and a dict (bench/fleet_rss.py measures the whole persona under 1 MiB), it keeps slot ids
("2026-03-02/post/1") per persona, and stopping one persona's jobs (pause, reload) touches no
other's.

Isolation. A persona's start-up failure (a refused key, a locked or damaged ledger), a config
that does not load, or an exception ends that member only ("failed", with its error, in
``fleet status``); the fleet exits only when none is left running, paused or starting, with the
code a single ``run`` would give when they all agree (2 bad config, 3 state, 1 otherwise).
Every line a member logs carries ``persona=<name>`` (bound in its task's context, which its
scheduler's jobs inherit).

Control. SIGTERM/SIGINT stop every member as a single daemon stops (the action in flight ends,
then exit 0); SIGHUP reloads; ``fleet status|pause|resume|reload`` talk over the control socket
(``run.fleet_control``). A pause stops the persona's daemon and closes its runtime (its ledger
lock is free) and is remembered in its state dir (``fleet-paused``), so a restarted fleet keeps
it paused; resume starts it as a restart would (reconcile, missed slots made up or given up).

systemd. READY=1 once every member has been started (one persona's slow Glimpse must not hold
the whole fleet's start); WATCHDOG=1 only while no member is stuck (an action past its deadline
and its cancellation); STATUS= counts members by state.

Ops. One ``/healthz`` + ``/metrics`` listener for the whole fleet (``run --listen HOST:PORT``,
else the first ``[ops] listen`` the members' files name; members never bind one of their own):
one ``PersonaFeed`` per member, added and removed on reload, every family labelled ``persona``,
a paused member shown by ``glimpse_agent_paused`` and ``glimpse_agent_state``. A member's
tallies live as long as the member (its counters survive pause, resume and reload; a fresh
``Vitals`` per start). ``health()`` is the fleet's verdict (``ops.fleet_health``), asked by
``glimpse-agent fleet health`` over the control socket and by ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from glimpse_agent.clock import Clock, SystemClock
from glimpse_agent.config import LoadedAgent
from glimpse_agent.config.models import listen_address
from glimpse_agent.errors import (
    ConfigError,
    KeyRefused,
    Problem,
    StateError,
    StateUnwritable,
    Unauthorized,
)
from glimpse_agent.health import DEFAULT_PATIENCE, Verdict, judge
from glimpse_agent.ledger import Ledger
from glimpse_agent.ledger.storage import ensure_state_dir
from glimpse_agent.logs import get_logger
from glimpse_agent.notify import (
    Heartbeat,
    SystemdNotifier,
    watchdog_interval_seconds,
    write_heartbeat,
)
from glimpse_agent.ops.fleet_health import FleetVerdict, MemberVerdict, judge_fleet, paused_verdict
from glimpse_agent.ops.metrics import PersonaFeed
from glimpse_agent.ops.observe import ObservedClient, glimpse_watcher, observe_here
from glimpse_agent.ops.tallies import Tallies
from glimpse_agent.ops.vitals import Vitals
from glimpse_agent.planner import Slot
from glimpse_agent.redaction import redact
from glimpse_agent.run import fleet_control
from glimpse_agent.run.assemble import Runtime, open_runtime
from glimpse_agent.run.daemon import Daemon
from glimpse_agent.run.deadlines import action_deadlines
from glimpse_agent.run.fleet_configs import FleetSource, Loaded, load_all, load_one, with_clashes
from glimpse_agent.run.opening import OpeningAgent

if TYPE_CHECKING:  # the listener (and prometheus_client) load only when one is asked for
    from glimpse_agent.ops.listener import OpsListener

PAUSED_FILE = "fleet-paused"
#: Buckets shown by ``fleet status`` (the rest are in ``status -c``).
STATUS_BUCKETS = ("posts", "generation", "reactions", "comments", "follows")
#: How long ``fleet status`` waits for one persona's ledger before showing it without quotas.
STATUS_LEDGER_WAIT = 2.0
#: Members whose task ended on its own with one of these are "config_error", not "failed".
_EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, 2),
    (StateUnwritable, 4),
    (StateError, 3),
)


def _exit_code(exc: BaseException) -> int:
    """The code a single `run -c` of this persona would have exited with."""
    if isinstance(exc, KeyRefused) or (isinstance(exc, Unauthorized) and exc.service == "glimpse"):
        return 5  # Glimpse refused this persona's key
    return next((c for t, c in _EXIT_CODES if isinstance(exc, t)), 1)


def shared_http() -> httpx.AsyncClient:
    """The fleet's one client. No default headers and no cookie jar that keeps anything (a
    cookie one persona's service set must never ride on another persona's request); no cap on
    connections, so a hanging host holding some cannot starve the others (each persona sends
    one action at a time, so the count stays near the number of personas)."""
    return ObservedClient(  # each request reported to its own persona's vitals
        follow_redirects=True,
        timeout=httpx.Timeout(60.0, connect=10.0),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


class _RecordingNotifier(SystemdNotifier):
    """A member's notifier: its daemon's STATUS texts ("waiting for Glimpse …", "stuck: …")
    are kept for ``fleet status`` instead of going to systemd, which hears from the fleet."""

    def __init__(self) -> None:
        super().__init__(address="")
        self.last_status: str | None = None

    def notify(self, message: str) -> bool:
        if message.startswith("STATUS="):
            self.last_status = message[len("STATUS=") :]
        return False


class _MemberAgent(OpeningAgent):
    """The persona's agent, as ``run`` opens it, that also remembers its last failed action:
    ``fleet status`` shows it without waiting for the persona's ledger, which may be busy. The
    daemon gets no ``open_state``, so the ledger is opened at the start of ``startup``."""

    def __init__(
        self, loaded: LoadedAgent, opener: Callable[[], Awaitable[Runtime]], clock: Clock
    ) -> None:
        super().__init__(loaded, opener)
        self.clock = clock
        self.last_failure: str | None = None

    async def startup(self) -> None:
        await self.open()
        await super().startup()

    async def run_slot(self, slot: Slot) -> object:
        try:
            outcome = await super().run_slot(slot)
        except asyncio.CancelledError:
            self._failed(slot, "cancelled (past its deadline, or the persona was stopped)")
            raise
        except Exception as exc:
            self._failed(slot, f"{type(exc).__name__}: {exc}")
            raise
        if not getattr(outcome, "ok", True):
            self._failed(slot, str(getattr(outcome, "detail", "") or "failed"))
        return outcome

    def _failed(self, slot: Slot, why: str) -> None:
        at = self.clock.now().isoformat(timespec="seconds")
        self.last_failure = redact(f"{at} {slot.slot_id}: {why}")[:300]


@dataclass
class Member:
    """One persona of the fleet and where it stands."""

    loaded: Loaded
    state: str = "new"  # starting running stuck stopping paused failed config_error stopped
    error: str | None = None
    exit_code: int | None = None
    since: datetime | None = None
    daemon: Daemon | None = None
    agent: _MemberAgent | None = None
    notifier: _RecordingNotifier = field(default_factory=_RecordingNotifier)
    task: asyncio.Task[None] | None = None
    #: The member's task is ending because the fleet asked (pause, reload, stop).
    stopping: bool = False
    #: A reload found its file broken: the member runs on with the config it had.
    reload_problem: str | None = None
    #: Its counters, kept for the member's life (pause, resume, reload): never reset but by
    #: a restart of the fleet, as Prometheus expects of a counter.
    tallies: Tallies = field(default_factory=Tallies)
    #: What the fleet's ``/metrics`` and ``/healthz`` read of it.
    feed: PersonaFeed | None = None

    @property
    def patience(self) -> timedelta:
        agent = self.loaded.agent
        if agent is None:
            return DEFAULT_PATIENCE
        return timedelta(minutes=agent.config.ops.unhealthy_after_minutes)

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def path(self) -> Path:
        return self.loaded.path

    @property
    def state_dir(self) -> Path | None:
        return self.loaded.agent.config.state_dir if self.loaded.agent is not None else None

    @property
    def paused_file(self) -> Path | None:
        return self.state_dir / PAUSED_FILE if self.state_dir is not None else None

    def is_paused_on_disk(self) -> bool:
        marker = self.paused_file
        return marker is not None and marker.is_file()

    def live_state(self) -> str:
        """``state``, refined by the daemon while it runs (running, stuck, stopping)."""
        if self.state in ("starting", "running") and self.daemon is not None:
            with contextlib.suppress(RuntimeError):  # no running loop: keep the last known
                return self.daemon.health[0]
        return self.state

    @property
    def alive(self) -> bool:
        return self.task is not None and not self.task.done()


class Fleet:
    """Runs every persona ``source`` names until SIGTERM/SIGINT or ``request_stop``."""

    def __init__(
        self,
        source: FleetSource,
        *,
        control: Path,
        clock: Clock | None = None,
        dry_run: bool = False,
        notifier: SystemdNotifier | None = None,
        alive_every_seconds: float = 30.0,
        handle_signals: bool = True,
        http: httpx.AsyncClient | None = None,
        listen: str | None = None,
    ) -> None:
        """``listen``: "host:port" for the fleet's ``/healthz`` and ``/metrics`` (``--listen``);
        None: the first ``[ops] listen`` the members' files name, if any (see ``listen_for``)."""
        self.source = source
        self.control = control
        self.clock = clock or SystemClock()
        self.dry_run = dry_run
        self.notifier = notifier or SystemdNotifier()
        self.alive_every = min(alive_every_seconds, watchdog_interval_seconds() or 1e9)
        self.handle_signals = handle_signals
        self.http = http
        self._owns_http = http is None
        self.members: dict[Path, Member] = {}
        self.listen = listen
        #: One feed per member, in the members' order; the listener reads it at each request.
        self.feeds: list[PersonaFeed] = []
        self.listener: OpsListener | None = None
        #: The last turn of the fleet's alive loop (what ``health`` calls the fleet's loop).
        self.loop_at: datetime | None = None
        self.log = get_logger("glimpse_agent.fleet")
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._exit_code = 0
        self.started_at: datetime | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ public

    def request_stop(self) -> None:
        self._stop.set()

    def member(self, name: str) -> Member:
        """The member called ``name`` (its persona's name, or its file's stem)."""
        for m in self.members.values():
            if name in (m.name, m.path.stem):
                return m
        known = ", ".join(sorted(m.name for m in self.members.values())) or "none"
        raise ConfigError([Problem("fleet", "name", f"no persona named {name!r}; known: {known}")])

    async def run(self) -> int:
        """Start every persona and run until stopped. Raises ``ConfigError`` (exit 2) when not
        one config loads: then there is nothing to run."""
        loaded = load_all(self.source.paths())
        if not loaded:
            raise ConfigError(
                [Problem(self.source.describe(), "", "no agent.toml files (*.toml) to run")]
            )
        if all(item.agent is None for item in loaded):
            raise ConfigError([p for item in loaded for p in item.problems])
        loop = asyncio.get_running_loop()
        server = await fleet_control.serve(self.control, self.handle)
        try:
            self.listener = await self._listen(loaded)
        except BaseException:
            server.close()
            with contextlib.suppress(OSError):
                self.control.unlink()
            raise
        if self.http is None:
            self.http = shared_http()
        signals: list[signal.Signals] = []
        if self.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_stop_signal, sig)
            loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
            signals = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
        alive = asyncio.create_task(self._alive_loop(), name="fleet-alive")
        try:
            self.started_at = self.clock.now()
            for item in loaded:
                self._add(item)
            self.log.info(
                "fleet_started",
                source=self.source.describe(),
                personas=[m.name for m in self.members.values() if m.loaded.agent is not None],
                config_errors=[str(m.path) for m in self.members.values() if m.error],
                control=str(self.control),
            )
            self.notifier.ready()
            self._notify_status()
            await self._stop.wait()
            return await self._shutdown()
        finally:
            alive.cancel()
            await asyncio.gather(alive, return_exceptions=True)
            if self.listener is not None:
                await self.listener.aclose()
            server.close()
            with contextlib.suppress(OSError):
                self.control.unlink()
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            for sig in signals:
                loop.remove_signal_handler(sig)
            if self._owns_http and self.http is not None:
                await self.http.aclose()

    async def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """One control request: ``{"command": "status"|"pause"|"resume"|"reload", "name": …}``."""
        command = request.get("command")
        if command == "status":
            return {"ok": True, **(await self.status())}
        if command == "health":
            return {"ok": True, **self.health_doc()}
        if command == "reload":
            return {"ok": True, **(await self.reload())}
        if command in ("pause", "resume"):
            name = request.get("name")
            if not isinstance(name, str) or not name:
                return {"ok": False, "error": f"{command} needs a persona name"}
            member = self.member(name)
            await (self.pause(member) if command == "pause" else self.resume(member))
            return {"ok": True, "persona": await self._row(member)}
        return {"ok": False, "error": f"unknown command {command!r}"}

    async def status(self) -> dict[str, Any]:
        members = list(self.members.values())
        rows = await asyncio.gather(*(self._row(m) for m in members))
        counts = Counter(row["state"] for row in rows)
        return {
            "source": self.source.describe(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "at": self.clock.now().isoformat(),
            "counts": dict(counts),
            "personas": rows,
        }

    def health(self) -> FleetVerdict:
        """The fleet's verdict now (``ops.fleet_health``): its loop, and each persona's."""
        members = [
            MemberVerdict(m.name, m.live_state(), self._verdict(m)) for m in self.members.values()
        ]
        return judge_fleet(self.loop_at, self.clock.now(), members)

    def health_doc(self) -> dict[str, Any]:
        """The verdict as ``fleet health --json`` and ``/healthz`` show it."""
        verdict = self.health()
        return {
            **verdict.to_dict(),
            "source": self.source.describe(),
            "at": self.clock.now().isoformat(),
            "loop_at": self.loop_at.isoformat() if self.loop_at else None,
            "listen": "{}:{}".format(*self.listener.address) if self.listener else None,
        }

    def _verdict(self, member: Member) -> Verdict:
        """One persona's own verdict: ``health``'s rules on its daemon's heartbeat as of now,
        with its own patience; what the fleet knows (paused, failed, …) where it has none."""
        state = member.live_state()
        if state == "paused":
            return paused_verdict(member.since)
        if state in ("failed", "config_error"):
            return Verdict(False, redact(f"{state}: {member.error or 'no detail'}"), member.since)
        daemon = member.daemon
        if daemon is None or state in ("stopped", "new"):
            return Verdict(False, f"not running ({state})", member.since)
        return judge(daemon.beat(), self.clock.now(), member.patience)

    async def pause(self, member: Member) -> None:
        """Stop the persona and remember it is paused (in its state dir), until ``resume``."""
        marker = member.paused_file
        if marker is None:
            raise ConfigError(
                [Problem(str(member.path), "", "does not load, so it does not run: fix it, reload")]
            )
        try:
            ensure_state_dir(marker.parent)
            marker.write_text(
                json.dumps({"paused_at": self.clock.now().isoformat()}) + "\n", encoding="utf-8"
            )
        except OSError as exc:
            raise StateUnwritable(
                f"cannot note the pause in {marker}: {exc.strerror or exc}", errno=exc.errno
            ) from None
        with structlog.contextvars.bound_contextvars(persona=member.name):
            await self._stop_member(member)
            member.state, member.since, member.error = "paused", self.clock.now(), None
            self.log.info("persona_paused", file=str(member.path))
        self._notify_status()

    async def resume(self, member: Member) -> None:
        """Start a paused (or failed) persona again; a running one is left as it is."""
        marker = member.paused_file
        if marker is not None:
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()
        if member.alive:
            return
        with structlog.contextvars.bound_contextvars(persona=member.name):
            self.log.info("persona_resumed", file=str(member.path))
        self._start(member)
        self._notify_status()

    async def reload(self) -> dict[str, Any]:
        """Read the configs again: start new files, stop removed ones, restart changed ones
        (and ones that had failed: a reload is how an operator says "fixed"). A file that no
        longer loads leaves its persona running as it was, and says why."""
        async with self._reload_lock:
            if self._stop.is_set():
                return {"problems": ["the fleet is stopping"]}
            try:
                paths = self.source.paths()
            except ConfigError as exc:
                return {"problems": [str(p) for p in exc.problems]}
            added: list[str] = []
            removed: list[str] = []
            restarted: list[str] = []
            problems: list[str] = []
            unchanged = 0
            for path in [p for p in self.members if p not in paths]:
                member = self.members.pop(path)
                await self._stop_member(member)
                if member.feed in self.feeds:
                    self.feeds.remove(member.feed)
                removed.append(member.name)
            for path in paths:
                fresh = load_one(path)
                others = [m.loaded for m in self.members.values() if m.path != path]
                fresh = with_clashes(fresh, others)
                old = self.members.get(path)
                if old is None:
                    member = self._add(fresh)
                    added.append(member.name)
                    problems += [str(p) for p in fresh.problems]
                    continue
                if fresh.agent is None:
                    if old.loaded.agent is None:
                        old.loaded = fresh
                        old.error = "; ".join(str(p) for p in fresh.problems)
                    else:
                        old.reload_problem = "; ".join(str(p) for p in fresh.problems)
                    problems += [str(p) for p in fresh.problems]
                    continue
                old.reload_problem = None
                changed = (fresh.agent, fresh.key_digest) != (
                    old.loaded.agent,
                    old.loaded.key_digest,
                )
                if changed or old.state in ("failed", "config_error"):
                    await self._stop_member(old)
                    old.loaded = fresh
                    old.error = None
                    self._start(old)
                    restarted.append(old.name)
                else:
                    unchanged += 1
            result = {
                "added": added,
                "removed": removed,
                "restarted": restarted,
                "unchanged": unchanged,
                "problems": problems,
            }
            self.log.info("fleet_reloaded", **result)
            self._notify_status()
            return result

    # ------------------------------------------------------------------ members

    def _add(self, loaded: Loaded) -> Member:
        member = Member(loaded)
        self.members[loaded.path] = member
        member.feed = self._feed(member)
        self.feeds.append(member.feed)
        if loaded.agent is None:
            member.state, member.exit_code = "config_error", 2
            member.error = "; ".join(str(p) for p in loaded.problems)
            member.since = self.clock.now()
            with structlog.contextvars.bound_contextvars(persona=member.name):
                self.log.error(
                    "persona_config_error",
                    file=str(loaded.path),
                    problems=[str(p) for p in loaded.problems],
                )
            return member
        self._start(member)
        return member

    def _start(self, member: Member) -> None:
        loaded = member.loaded.agent
        if loaded is None or self._stop.is_set():
            return
        member.since = self.clock.now()
        member.stopping = False
        if member.is_paused_on_disk():
            member.state = "paused"
            with structlog.contextvars.bound_contextvars(persona=member.name):
                self.log.info("persona_paused", file=str(member.path), note="paused before")
            return
        config = loaded.config
        http = self.http
        vitals, tallies = Vitals(self.clock), member.tallies
        if member.feed is not None:  # what the listener reads follows the new daemon
            member.feed.persona = member.name
            member.feed.vitals = vitals
            member.feed.patience = member.patience
        agent = _MemberAgent(
            loaded,
            lambda: open_runtime(
                loaded,
                clock=self.clock,
                dry_run=self.dry_run,
                http=http,
                vitals=vitals,
                tallies=tallies,
            ),
            self.clock,
        )
        member.agent = agent
        member.notifier = _RecordingNotifier()
        member.daemon = Daemon(
            agent,
            clock=self.clock,
            heartbeat_file=config.state_dir / "heartbeat",
            heartbeat_minutes=config.daemon.heartbeat_minutes,
            misfire_grace_minutes=config.daemon.misfire_grace_minutes,
            stop_timeout_seconds=config.daemon.stop_timeout_seconds,
            deadline_for=action_deadlines(config).for_kind,
            notifier=member.notifier,
            handle_signals=False,
            persona=member.name,
            vitals=vitals,
            tallies=tallies,
        )
        member.state, member.error, member.exit_code = "starting", None, None
        # A fresh context per member: the persona name bound in it reaches every line its
        # daemon, its scheduler's jobs and its agent log, and no other member's.
        member.task = asyncio.create_task(self._run_member(member), name=f"persona:{member.name}")

    async def _run_member(self, member: Member) -> None:
        structlog.contextvars.bind_contextvars(persona=member.name)
        daemon, agent = member.daemon, member.agent
        assert daemon is not None and agent is not None
        loaded = member.loaded.agent
        if loaded is not None:
            # The shared client reports each request to the persona whose context sends it.
            # Set here, in the member's own task, not only where its runtime opens: that runs
            # in a task of the daemon's start-up whose context its scheduler's jobs do not
            # inherit, so their requests (posts, likes) would reach nobody's tallies and
            # vitals, and a Glimpse that went down after start would go unnoticed.
            observe_here(
                glimpse_watcher(loaded.config.glimpse.base_url, daemon.vitals, member.tallies)
            )
        self.log.info("persona_starting", file=str(member.path))
        try:
            state_dir = member.state_dir
            if state_dir is not None:
                with contextlib.suppress(OSError):  # the ledger's open says why, patiently
                    ensure_state_dir(state_dir)
            await daemon.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one persona's failure is its own
            member.exit_code = _exit_code(exc)
            member.state = "config_error" if member.exit_code == 2 else "failed"
            member.error = redact(f"{type(exc).__name__}: {exc}")[:500]
            member.since = self.clock.now()
            self.log.error(
                "persona_failed",
                error=str(exc),
                error_type=type(exc).__name__,
                exit_code=member.exit_code,
                note="the other personas run on",
            )
        finally:
            runtime, agent.runtime = agent.runtime, None
            if runtime is not None:
                try:
                    await runtime.close()
                except Exception as exc:  # closing must not take others down
                    self.log.warning("persona_close_failed", error=str(exc))
            member.daemon = None
            if not member.stopping and member.state not in ("failed", "config_error"):
                member.state = "stopped"
            self._after_member_ended(member)

    async def _stop_member(self, member: Member) -> None:
        member.stopping = True
        if member.daemon is not None:
            member.daemon.request_stop()
        if member.task is not None and not member.task.done():
            await asyncio.gather(member.task, return_exceptions=True)
        if member.state not in ("failed", "config_error", "paused"):
            member.state = "stopped"

    def _after_member_ended(self, ended: Member) -> None:
        """When no member is left running, starting or paused, the fleet has nothing to do:
        it ends with the code a single ``run`` would give, if the members agree on one."""
        if ended.stopping or self._stop.is_set() or self._reload_lock.locked():
            return
        others = [m for m in self.members.values() if m is not ended]
        if any(m.alive or m.state == "paused" for m in others):
            return
        codes = {m.exit_code for m in self.members.values() if m.exit_code is not None}
        self._exit_code = codes.pop() if len(codes) == 1 else 1
        self.log.error("fleet_all_failed", exit_code=self._exit_code)
        self._stop.set()

    async def _shutdown(self) -> int:
        self.notifier.stopping()
        for member in self.members.values():
            member.stopping = True
            if member.daemon is not None:
                member.daemon.request_stop()
        tasks = [m.task for m in self.members.values() if m.task is not None]
        # Every daemon waits for its own action in flight (up to its stop timeout), in parallel.
        await asyncio.gather(*tasks, return_exceptions=True)
        self.log.info("fleet_stopped", exit_code=self._exit_code)
        return self._exit_code

    # ------------------------------------------------------------------ metrics

    def _feed(self, member: Member) -> PersonaFeed:
        """What the fleet's listener reads of ``member``: its state, its verdict, its daemon's
        heartbeat, its ledger (its runtime's while it runs, the file read-only while paused)."""

        def heartbeat() -> Heartbeat | None:
            return member.daemon.beat() if member.daemon is not None else None

        async def read_ledger() -> dict[str, Any] | None:
            return await self._ledger_view(member)

        return PersonaFeed(
            persona=member.name,
            vitals=Vitals(self.clock),
            tallies=member.tallies,
            clock=self.clock,
            patience=member.patience,
            read_ledger=read_ledger,
            heartbeat=heartbeat,
            state=member.live_state,
            verdict_of=lambda: self._verdict(member),
        )

    async def _listen(self, loaded: list[Loaded]) -> OpsListener | None:
        """The fleet's one listener, or None when neither ``--listen`` nor a member's
        ``[ops] listen`` asks for one. An address that cannot be had is exit 2, naming
        where it came from."""
        choice = listen_for(self.listen, loaded)
        if choice is None:
            return None
        (host, port), where, key, ignored = choice
        if ignored:
            self.log.warning(
                "ops_listen_ignored",
                files=ignored,
                listening=f"{host}:{port}",
                note="a fleet has one listener for every persona; it uses " + where,
            )
        from glimpse_agent.ops.listener import OpsListener

        listener = OpsListener(host, port, self.feeds, health=self._healthz)
        try:
            return await listener.start()
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise ConfigError(
                [Problem(where, key, f"cannot listen on {host}:{port}: {why}")]
            ) from None

    def _healthz(self) -> tuple[bool, dict[str, Any]]:
        doc = self.health_doc()
        return bool(doc["healthy"]), doc

    # ------------------------------------------------------------------ status

    async def _row(self, member: Member) -> dict[str, Any]:
        state = member.live_state()
        row: dict[str, Any] = {
            "persona": member.name,
            "file": str(member.path),
            "state": state,
            "since": member.since.isoformat() if member.since else None,
            "detail": member.notifier.last_status if state in ("starting", "stuck") else None,
            "next_action": None,
            "quotas_left": None,
            "last_error": member.error
            or member.reload_problem
            or (member.agent.last_failure if member.agent is not None else None),
        }
        if member.daemon is not None:
            upcoming = [(j, at) for j, at in member.daemon.scheduled if j not in ("heartbeat",)]
            if upcoming:
                row["next_action"] = {"job": upcoming[0][0], "at": upcoming[0][1].isoformat()}
        view = await self._ledger_view(member)
        if view is not None:
            row["quotas_left"] = {
                b: view["quotas"][b]["left"] for b in STATUS_BUCKETS if b in view["quotas"]
            }
            errors = view.get("last_errors") or []
            if row["last_error"] is None and errors:
                e = errors[0]
                row["last_error"] = f"{e['at']} {e['where']}: {e['message']}"[:300]
        return row

    async def _ledger_view(self, member: Member) -> dict[str, Any] | None:
        loaded = member.loaded.agent
        if loaded is None:
            return None
        now = self.clock.now()
        runtime = member.agent.runtime if member.agent is not None else None
        try:
            if runtime is not None and member.alive:
                call = runtime.ledger.run(Ledger.status_view, now, loaded.persona)
            elif loaded.config.state_dir.joinpath("ledger.json").is_file():
                call = asyncio.to_thread(_offline_view, loaded.config.state_dir, now, loaded)
            else:
                return None
            view: dict[str, Any] = await asyncio.wait_for(call, STATUS_LEDGER_WAIT)
            return view
        except (TimeoutError, OSError, StateError):
            return None

    # ------------------------------------------------------------------ signals, systemd

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        self.log.info("stop_requested", signal=sig.name)
        self._stop.set()

    def _on_reload_signal(self) -> None:
        self.log.info("reload_requested", signal="SIGHUP")
        task = asyncio.create_task(self.reload(), name="fleet-reload")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _notify_status(self) -> None:
        counts = Counter(m.live_state() for m in self.members.values())
        text = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        self.notifier.status(f"fleet: {text}"[:200])

    @property
    def heartbeat_file(self) -> Path:
        """The fleet's own heartbeat file, beside its control socket (each persona still
        writes its own in its state dir): what a container's health check reads."""
        return self.control.parent / "heartbeat"

    async def _alive_loop(self) -> None:
        """WATCHDOG=1 while no member is stuck: a wedged persona gets the fleet restarted,
        as it would get its own daemon restarted. The heartbeat file says the same."""
        was_stuck: set[str] = set()
        healthy_at: datetime | None = None
        while True:
            stuck = {m.name for m in self.members.values() if m.live_state() == "stuck"}
            now = self.clock.now()
            self.loop_at = now
            if not stuck:
                self.notifier.watchdog()
                healthy_at = now
            beat = Heartbeat(
                at=healthy_at or now,
                state="stuck" if stuck else "running",
                action=", ".join(sorted(stuck))[:200] or None,
                written_at=now,
            )
            try:
                await asyncio.to_thread(write_heartbeat, self.heartbeat_file, beat)
            except OSError as exc:
                self.log.warning("heartbeat_file_failed", error=str(exc))
            if stuck != was_stuck:
                if stuck:
                    self.log.error(
                        "fleet_member_stuck",
                        personas=sorted(stuck),
                        note="the watchdog is no longer fed",
                    )
                self._notify_status()
                was_stuck = stuck
            await asyncio.sleep(self.alive_every)


def listen_for(
    flag: str | None, loaded: list[Loaded]
) -> tuple[tuple[str, int], str, str, list[str]] | None:
    """Where the fleet listens: ((host, port), where that came from, its key, the files whose
    ``[ops] listen`` names another address and is ignored), or None for no listener.

    ``--listen`` wins over every file. Without it, the first file (in the fleet's order) whose
    ``[ops] listen`` is set gives the address: one listener serves every persona, so files
    naming the same address never each try to bind it, and a file naming another one is
    ignored (and said so). Read at start; a reload does not move it."""
    named = [
        (item.path, item.agent.config.ops.listen)
        for item in loaded
        if item.agent is not None and item.agent.config.ops.listen
    ]
    if flag is not None:
        address, where, key = listen_address(flag), "command line", "--listen"
    elif named:
        address, where, key = listen_address(named[0][1] or ""), str(named[0][0]), "ops.listen"
    else:
        return None
    ignored = [str(path) for path, text in named if listen_address(text or "") != address]
    return address, where, key, ignored


def _offline_view(state_dir: Path, now: datetime, loaded: Any) -> dict[str, Any]:
    with Ledger.open(state_dir, clock=SystemClock(), read_only=True) as ledger:
        view: dict[str, Any] = ledger.status_view(now, loaded.persona)
        return view
