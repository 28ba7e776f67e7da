"""What the crash harness and the fault soak share: a faked clock for every process, the
emulator, the daemon as a real process, and the end-of-run checks.

Every process runs under ``faketime -f '@<start> x<speed>'`` with ``FAKETIME_DONT_RESET=1``: the
harness re-executes itself under it, and the daemons it starts inherit the same shared clock
(without ``DONT_RESET`` each child would start its own clock at ``<start>``). Timeouts shrink by the
speed, so ``[glimpse] timeout`` is given in fake seconds that stay well above a loopback round trip.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from glimpse_agent.clock import SystemClock
from glimpse_agent.sandbox import stack
from glimpse_agent.sandbox.chaos import Chaos
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.images import glif as glif_app
from glimpse_agent.sandbox.images import viewcomfy as viewcomfy_app
from glimpse_agent.sandbox.langflow.app import LangflowState, langflow_routes
from glimpse_agent.sandbox.langflow.model import plausible_caption
from glimpse_agent.sandbox.server import LoopbackServer
from glimpse_agent.sandbox.toml_writer import write_agent_toml

#: A Monday, two hours before the persona's window opens.
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
UNDER_FAKETIME = "GLIMPSE_HARNESS_FAKETIME"
POSTS_PER_DAY = 6
KEY_ENV = "GLIMPSE_HARNESS_KEY"
SPEED_ENV = "GLIMPSE_HARNESS_SPEED"


def real(seconds: float) -> float:
    """``seconds`` of real time in the faked clock's seconds (what timeouts are counted in)."""
    return seconds * float(os.environ.get(SPEED_ENV, "1"))


def faketime_missing() -> str | None:
    """Why the harness cannot run here, or None."""
    if shutil.which("faketime") is None:
        return "faketime is not installed (apt-get install -y faketime): harness skipped"
    return None


def under_faketime(module: str, speed: int, argv: list[str]) -> None:
    """Re-execute ``python -m module argv`` under one shared faked clock, unless already there.
    Exits 0 with a SKIP line when faketime is missing."""
    if os.environ.get(UNDER_FAKETIME) == "1":
        return
    missing = faketime_missing()
    if missing:
        print(f"SKIP: {missing}", flush=True)
        sys.exit(0)
    env = {**os.environ, UNDER_FAKETIME: "1", "FAKETIME_DONT_RESET": "1", "TZ": "UTC"}
    env[SPEED_ENV] = str(speed)
    spec = f"@{START:%Y-%m-%d %H:%M:%S} x{speed}"
    cmd = ["faketime", "-f", spec, sys.executable, "-m", module, *argv]
    os.execvpe("faketime", cmd, env)


def glimpse_agent_exe() -> str:
    """The venv's console script, as a user's unit runs it."""
    exe = Path(sys.executable).parent / "glimpse-agent"
    return str(exe) if exe.exists() else shutil.which("glimpse-agent") or "glimpse-agent"


class _Server(LoopbackServer):
    """A loopback server whose start-up wait is counted in real seconds on the faked clock."""

    speed = 1

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self._run, name=f"loopback-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10 * self.speed
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"emulator on port {self.port} did not start")
            time.sleep(0.01)
        return self


class Emulator:
    """The Glimpse emulator on loopback, on the (faked) system clock."""

    def __init__(self, seed: int, speed: int, population: int = 12) -> None:
        # A cut or dropped answer is the fault working as meant, not news.
        logging.getLogger("uvicorn.error").addFilter(
            lambda record: "without completing response" not in record.getMessage()
        )
        self.world = GlimpseWorld(SystemClock(), seed=seed, population=population)
        self.server = _Server(create_glimpse_app(self.world))
        self.server.speed = speed
        self.server.start()
        self.agent_id, self.key = self.world.create_agent("harness")
        self.base_url = self.server.url + API_ROOT

    def stop(self) -> None:
        self.world.faults.release()
        self.server.stop()


class Services:
    """The image and caption services (Glif, then ViewComfy; Langflow), each on loopback behind
    a ``Chaos`` that fails a share of its requests (``probability`` 0: none)."""

    def __init__(self, seed: int, speed: int, *, probability: float, timeout: float) -> None:
        from starlette.applications import Starlette

        langflow = LangflowState(api_key=stack.LANGFLOW_KEY)
        langflow.add_flow(
            endpoint_name=stack.CAPTION_FLOW,
            template=stack.CAPTION_PROMPT,
            model=plausible_caption,
        )
        apps = {
            "glif": glif_app.create_glif_app(),
            "viewcomfy": viewcomfy_app.create_viewcomfy_app(),
            "langflow": Starlette(routes=langflow_routes(langflow)),
        }
        self.langflow = langflow
        self.chaos: dict[str, Chaos] = {}
        self.servers: dict[str, _Server] = {}
        for n, (name, app) in enumerate(apps.items(), start=1):
            self.chaos[name] = Chaos(
                app,
                probability=probability,
                seed=seed * 100 + n,
                service=name,
                slow_seconds=timeout * 6,
                endless_every=20.0,
            )
            server = _Server(self.chaos[name])
            server.speed = speed
            self.servers[name] = server
            server.start()

    def url(self, name: str) -> str:
        return self.servers[name].url

    def quiet(self) -> None:
        for chaos in self.chaos.values():
            chaos.stop_faults()

    def figures(self) -> dict[str, Any]:
        return {name: chaos.figures() for name, chaos in self.chaos.items()}

    def stop(self) -> None:
        self.langflow.release()
        for name, server in self.servers.items():
            self.chaos[name].release()
            server.stop()

    def sections(self, timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
        """``[images]`` and ``[captions]`` for these services."""
        images: dict[str, Any] = {
            "order": ["glif", "viewcomfy"],
            "glif": {
                "token": glif_app.TOKEN,
                "glif_id": "glif-schnell",
                "base_url": self.url("glif"),
                "api_url": self.url("glif") + "/api",
                "timeout": timeout,
            },
            "viewcomfy": {
                "url": self.url("viewcomfy"),
                "api_url": self.url("viewcomfy"),
                "client_id": viewcomfy_app.CLIENT_ID,
                "client_secret": viewcomfy_app.CLIENT_SECRET,
                "timeout": timeout,
            },
        }
        captions: dict[str, Any] = {
            "order": ["langflow", "template"],
            "langflow": {
                "base_url": self.url("langflow"),
                "flow": stack.CAPTION_FLOW,
                "api_key": stack.LANGFLOW_KEY,
                "timeout": timeout,
                "tweak_map": {
                    "Prompt-capPr.voice": "persona.voice",
                    "Prompt-capPr.topic": "post.topic",
                    "Prompt-capPr.hashtags": "post.hashtags",
                },
            },
        }
        return images, captions


def write_config(
    root: Path,
    base_url: str,
    *,
    timeout: float,
    glimpse_images: bool = False,
    services: Services | None = None,
) -> Path:
    """A persona that posts six times a day between 08:00 and 20:00 UTC and engages, and an
    agent.toml with the daemon's own defaults (jitter, misfire grace) as a user would leave them."""
    persona = root / "persona.toml"
    persona.write_text(
        'name = "harness"\ntimezone = "UTC"\nactive_hours = ["08:00", "20:00"]\n'
        f"posts_per_day = {POSTS_PER_DAY}\nmin_post_gap_minutes = 60\n"
        'topics = ["lighthouses at dusk", "foxes in snow", "tide pools", "old trams"]\n'
        'hashtags = ["#aiart"]\n[engagement]\nsessions_per_day = 6\nlikes_per_day = 20\n'
        "comments_per_day = 4\nfollows_per_day = 2\n",
        encoding="utf-8",
    )
    images: dict[str, Any] = {"order": ["local"], "local": {"width": 64, "height": 64}}
    if glimpse_images:
        images["order"] = ["glimpse", "local"]
        images["glimpse"] = {"provider": "huggingface", "api_key": "hf_harness", "mode": "stored"}
    captions: dict[str, Any] = {"order": ["template"]}
    if services is not None:
        images, captions = services.sections(timeout)
    raw: dict[str, Any] = {
        "persona": str(persona),
        "state_dir": str(root / "state"),
        "glimpse": {"base_url": base_url, "api_key": "${" + KEY_ENV + "}", "timeout": timeout},
        "images": images,
        "captions": captions,
        "daemon": {"heartbeat_minutes": 10},
    }
    return write_agent_toml(root / "agent.toml", raw)


@dataclass
class Daemon:
    """``glimpse-agent run`` as a real process, restarted at will; stderr of every run kept."""

    config: Path
    key: str
    logs: Path
    runs: int = 0
    exits: Counter[int] = field(default_factory=Counter)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.runs += 1
        env = {**os.environ, KEY_ENV: self.key}
        env.pop("NOTIFY_SOCKET", None)
        self.logs.mkdir(parents=True, exist_ok=True)
        err = (self.logs / f"run-{self.runs:04d}.err").open("wb")
        self.proc = subprocess.Popen(
            [glimpse_agent_exe(), "run", "-c", str(self.config)],
            env=env,
            stdout=err,
            stderr=err,
        )
        err.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reap(self) -> None:
        """Note the exit of a run that ended by itself."""
        if self.proc is not None and self.proc.poll() is not None:
            self.exits[self.proc.returncode] += 1
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.exits[self.proc.returncode] += 1
            self.proc = None

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, as systemd stops it; its exit code (None if it had to be killed after
        ``timeout`` real seconds)."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=real(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self.exits[code] += 1
        self.proc = None
        return code

    def stderr(self) -> str:
        return "".join(
            p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(self.logs.glob("run-*.err"))
        )


def events(stderr: str) -> Counter[str]:
    """The daemon's JSON log events, counted by name."""
    found: Counter[str] = Counter()
    for line in stderr.splitlines():
        if line.startswith("{"):
            try:
                found[str(json.loads(line).get("event"))] += 1
            except ValueError:
                continue
    return found


def ledger_posts(state: Path) -> list[dict[str, Any]]:
    """Our posts as the ledger recorded them (``ledger.json`` and ``history.jsonl``)."""
    found: dict[str, dict[str, Any]] = {}
    ledger = state / "ledger.json"
    if ledger.exists():
        try:
            tables = json.loads(ledger.read_text(encoding="utf-8"))
        except ValueError:
            tables = {}
        for doc in tables.get("posts", {}).values():
            if isinstance(doc, dict) and "post_id" in doc:
                found[doc["post_id"]] = doc
    history = state / "history.jsonl"
    if history.exists():
        for line in history.read_text(encoding="utf-8").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and "post_id" in doc:
                found.setdefault(doc["post_id"], doc)
    return list(found.values())


def status_json(config: Path, key: str) -> tuple[int, bool, str]:
    """``glimpse-agent status --json``: exit code, whether stdout is JSON, stderr's tail."""
    env = {**os.environ, KEY_ENV: key}
    run = subprocess.run(
        [glimpse_agent_exe(), "status", "--json", "-c", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=real(120),
    )
    try:
        json.loads(run.stdout)
        valid = True
    except ValueError:
        valid = False
    return run.returncode, valid, run.stderr[-500:]


def planned_posts(start: datetime, end: datetime) -> int:
    """Posts the plan holds for every active window (08:00-20:00 UTC) wholly inside the run."""
    days = 0
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        if start <= day + timedelta(hours=8) and day + timedelta(hours=20) <= end:
            days += 1
        day += timedelta(days=1)
    return days * POSTS_PER_DAY


def verdict(
    emu: Emulator,
    daemon: Daemon,
    root: Path,
    *,
    start: datetime,
    end: datetime,
    check_status: bool = True,
) -> dict[str, Any]:
    """The end-of-run figures, from the emulator's state, the ledger and the daemon's stderr."""
    world, me = emu.world, emu.agent_id
    stats = world.stats
    posts = world.posts_by(me)
    known = {doc["post_id"] for doc in ledger_posts(root / "state")}
    by_slot = Counter(doc.get("slot_id") for doc in ledger_posts(root / "state"))
    own = {p.id for p in posts}
    comments_per_post = Counter(c.post_id for c in world.comments_by(me) if c.post_id not in own)
    repeats = {code: n for (who, code), n in stats.repeats.items() if who == me}
    stderr = daemon.stderr()
    found = events(stderr)
    in_window = [p for p in posts if start <= p.created_at.replace(tzinfo=UTC) <= end]
    figures: dict[str, Any] = {
        "daemon_runs": daemon.runs,
        "exit_codes": dict(daemon.exits),
        "posts_made": len(in_window),
        "posts_planned": planned_posts(start, end),
        "posts_unknown_to_ledger": len(own - known),
        "posts_per_slot_over_one": sum(n - 1 for s, n in by_slot.items() if s and n > 1),
        "likes": len(world.likes_by(me)),
        "comments": len(world.comments_by(me)),
        "follows": len(world.follows_by(me)),
        "duplicate_likes": repeats.get("already_liked", 0),
        "duplicate_follows": repeats.get("already_following", 0),
        "duplicate_comments": sum(n - 1 for n in comments_per_post.values() if n > 1),
        "limit_breaches": stats.rate_limited_count(me),
        "limit_breaches_by_bucket": {b: n for (w, b), n in stats.rate_limited.items() if w == me},
        "retry_after_violations": sum(
            n for (who, _), n in stats.retry_after_violations.items() if who == me
        ),
        "retry_after_violations_by_bucket": {
            b: n for (w, b), n in stats.retry_after_violations.items() if w == me
        },
        "faults_served": dict(world.faults.served_by_kind),
        "tracebacks": stderr.count("Traceback (most recent call last)"),
        "events": {
            k: found[k]
            for k in (
                "posted",
                "reconciled_post_absent",
                "reconcile_post_pending",
                "action_cancelled_at_stop",
                "slots_missed",
                "job_failed",
                "post_skipped",
                "startup_retry",
                "daemon_ready",
            )
            if found[k]
        },
        "plain_text_stderr_lines": sum(
            1 for line in stderr.splitlines() if line.strip() and not line.startswith("{")
        ),
    }
    figures["duplicate_posts"] = (
        figures["posts_unknown_to_ledger"] + figures["posts_per_slot_over_one"]
    )
    if check_status:
        code, valid, err = status_json(root / "agent.toml", emu.key)
        figures["status_exit"], figures["status_json_valid"] = code, valid
        if code != 0 or not valid:
            figures["status_stderr"] = err
    return figures


def sleep_fake(seconds: float) -> None:
    """Sleep ``seconds`` of the faked clock (time.sleep follows it)."""
    time.sleep(seconds)


def run_and_report(
    module: str,
    args: argparse.Namespace,
    argv: list[str],
    run: Callable[[argparse.Namespace, Path], dict[str, Any]],
    broken: Callable[[dict[str, Any]], list[str]],
) -> int:
    """What every harness command does around its own ``run``: under the shared faked clock, in
    ``--keep`` or a throw-away folder, figures printed (and written to ``--out``) as JSON with
    the promises they break; exit 1 if any is broken."""
    under_faketime(module, args.speed, argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        figures = run(args, args.keep)
    else:
        prefix = "glimpse-" + module.rsplit(".", 1)[-1] + "-"
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            figures = run(args, Path(tmp))
    figures["broken"] = broken(figures)
    text = json.dumps(figures, indent=2, sort_keys=True)
    print(text, flush=True)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 1 if figures["broken"] else 0
