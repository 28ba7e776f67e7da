"""Start-up time and memory footprint of glimpse-agent, printed as a markdown table.

Measures, each in fresh interpreters:

- ``glimpse-agent --help`` wall time (median of ``--runs``), next to a bare ``python -c pass``;
- the import of ``glimpse_agent.cli`` (``-X importtime``) and of what ``run`` imports
  (``glimpse_agent.run.assemble`` + ``glimpse_agent.run.daemon``);
- an idle daemon: ``open_runtime`` + ``agent.startup()`` + the APScheduler ``Daemon`` started with
  the day's plan (every slot in the future, so nothing runs), against the Glimpse emulator served
  from this process on loopback. RSS/HWM (``/proc/PID/status``) and PSS/USS
  (``/proc/PID/smaps_rollup``), read by this process, for
  (1) a config without SDK backends (local images, template captions) and
  (2) ``[images.openai]`` + ``[images.huggingface]`` configured and each used once (emulators);
- N no-SDK personas side by side: PSS per persona, and how many fit on a small VPS.

No network beyond loopback. Each run takes well under two minutes:

    .venv/bin/python bench/bench_footprint.py                  # defaults: 15 runs, 4 personas
    .venv/bin/python bench/bench_footprint.py --runs 30 --personas 8 --vps-mib 2048
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

# Only the standard library at module level: the --child daemon must not load the emulators.
ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
SDK_MODULES = ("openai", "huggingface_hub", "httpx2")


# --------------------------------------------------------------------------- child: the daemon


async def _child_daemon(config: str, ready_file: str, use: list[str]) -> None:
    """Run the real daemon until stdin closes; write a JSON note once it is idle."""
    import asyncio
    import gc

    from glimpse_agent.clock import SystemClock
    from glimpse_agent.config import load_agent
    from glimpse_agent.imaging import ImageRequest
    from glimpse_agent.logs import configure_logging
    from glimpse_agent.run.assemble import open_runtime
    from glimpse_agent.run.daemon import Daemon

    configure_logging("warning", json=True)
    clock = SystemClock()
    loaded = load_agent(config)
    daemon_cfg = loaded.config.daemon
    note: dict[str, Any] = {"first_image_s": {}, "second_image_s": {}}
    async with await open_runtime(loaded, clock=clock) as runtime:
        daemon = Daemon(
            runtime.agent,
            clock=clock,
            heartbeat_file=loaded.config.state_dir / "heartbeat",
            heartbeat_minutes=daemon_cfg.heartbeat_minutes,
            misfire_grace_minutes=daemon_cfg.misfire_grace_minutes,
            stop_timeout_seconds=daemon_cfg.stop_timeout_seconds,
        )
        task = asyncio.create_task(daemon.run())
        heartbeat = loaded.config.state_dir / "heartbeat"
        deadline = time.monotonic() + 60
        while not (daemon.scheduled and heartbeat.exists()):
            if task.done() or time.monotonic() > deadline:
                await task  # raises what stopped it
                raise RuntimeError("the daemon did not become ready within 60 s")
            await asyncio.sleep(0.01)
        note["ready_monotonic"] = time.monotonic()
        note["jobs"] = len(daemon.scheduled)
        request = ImageRequest(prompt="a paper boat in a storm", persona=loaded.persona.name)
        for backend in runtime.agent.router.backends:
            if backend.name in use:
                for key in ("first_image_s", "second_image_s"):
                    started = time.perf_counter()
                    await backend.generate(request)
                    note[key][backend.name] = time.perf_counter() - started
        gc.collect()
        note["modules"] = len(sys.modules)
        note["sdks"] = [m for m in SDK_MODULES if m in sys.modules]
        note["apscheduler_running"] = any(j == "plan" for j, _ in daemon.scheduled)
        await asyncio.to_thread(_write_atomically, Path(ready_file), json.dumps(note))
        await asyncio.to_thread(sys.stdin.read)  # idle until the parent closes our stdin
        daemon.request_stop()
        await task


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- parent: helpers


def median_wall(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Median wall time (s) of ``argv`` over ``runs`` runs, after one warm-up run."""
    subprocess.run(argv, check=True, capture_output=True, env=env)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def import_time_us(modules: Sequence[str], runs: int) -> float:
    """Median of the summed ``-X importtime`` cumulative times (µs) of ``modules``."""
    code = "; ".join(f"import {m}" for m in modules)
    totals = []
    for _ in range(runs + 1):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            check=True,
            capture_output=True,
            text=True,
        )
        cumulative = {}
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
            if m:
                cumulative[m.group(3)] = int(m.group(1))
        totals.append(sum(cumulative.get(m, 0) for m in modules))
    return statistics.median(totals[1:])


def modules_after(code: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", f"{code}; import sys; print(len(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout.split()[-1])


def proc_memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM (status) and Pss, USS = Private_* (smaps_rollup) of ``pid``, in MiB."""
    out: dict[str, float] = {}
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    for key in ("VmRSS", "VmHWM"):
        m = re.search(rf"^{key}:\s+(\d+) kB", status, re.M)
        out[key] = int(m.group(1)) / 1024 if m else float("nan")
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8")
    except OSError:
        return out
    kb = {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+) kB", rollup, re.M)}
    out["Pss"] = kb.get("Pss", 0) / 1024
    out["USS"] = (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) / 1024
    return out


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def dump_toml(data: dict[str, Any]) -> str:
    """Enough TOML for agent.toml and persona files: scalars, lists and nested tables."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []

    def walk(prefix: str, table: dict[str, Any]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if prefix and scalars:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{k} = {_toml(v)}" for k, v in scalars.items())
        for k, v in table.items():
            if isinstance(v, dict):
                tables.append((f"{prefix}.{k}" if prefix else k, v))
        while tables:
            walk(*tables.pop(0))

    walk("", data)
    return "\n".join(lines) + "\n"


def idle_persona(source: Path, now: datetime) -> dict[str, Any]:
    """``source`` in UTC with an active window from now+2h to now+6h: every slot of the plan is
    in the future, so the daemon sits idle with its jobs scheduled."""
    persona = tomllib.loads(source.read_text(encoding="utf-8"))
    start = now + timedelta(hours=2)
    persona["timezone"] = "UTC"
    persona["active_hours"] = [f"{start:%H}:00", f"{start + timedelta(hours=4):%H}:00"]
    return persona


# --------------------------------------------------------------------------- parent: scenarios


@dataclass
class Emulators:
    glimpse: Any
    openai_url: str
    hf_url: str


@contextmanager
def emulators() -> Iterator[Emulators]:
    from glimpse_agent.sandbox.glimpse.testing import glimpse_sandbox
    from glimpse_agent.sandbox.images import huggingface as hf_app
    from glimpse_agent.sandbox.images import openai as openai_images
    from glimpse_agent.sandbox.server import LoopbackServer

    with ExitStack() as stack:
        glimpse = stack.enter_context(glimpse_sandbox(population=4))
        oa = stack.enter_context(LoopbackServer(openai_images.create_openai_images_app()))
        hf = stack.enter_context(LoopbackServer(hf_app.create_hf_app()))
        yield Emulators(glimpse, f"{oa.url}/v1", f"{hf.url}/models/{hf_app.MODEL}")


def write_agent(workdir: Path, emus: Emulators, *, sdks: bool) -> Path:
    from glimpse_agent.sandbox.images import huggingface as hf_app
    from glimpse_agent.sandbox.images import openai as openai_images

    workdir.mkdir(parents=True)
    persona = workdir / "persona.toml"
    source = ROOT / "personas" / "aurora.toml"
    persona.write_text(dump_toml(idle_persona(source, datetime.now(UTC))), encoding="utf-8")
    _, key = emus.glimpse.world.create_agent(f"bench{os.getpid()}{workdir.name}"[:30])
    images: dict[str, Any] = {"order": ["local"], "local": {"width": 768, "height": 768}}
    if sdks:
        images["order"] = ["openai", "huggingface", "local"]
        images["openai"] = {
            "api_key": openai_images.API_KEY,
            "base_url": emus.openai_url,
            "timeout": 30,
        }
        images["huggingface"] = {
            "token": hf_app.TOKEN,
            "base_url": emus.hf_url,
            "timeout": 30,
        }
    config = {
        "persona": str(persona),
        "state_dir": str(workdir / "state"),
        "log_level": "warning",
        "glimpse": {"base_url": emus.glimpse.base_url, "api_key": key, "timeout": 30},
        "images": images,
        "captions": {"order": ["template"]},
    }
    path = workdir / "agent.toml"
    path.write_text(dump_toml(config), encoding="utf-8")
    return path


@dataclass
class Child:
    """A daemon in its own interpreter; it stops when its stdin closes."""

    proc: subprocess.Popen[str]
    ready_file: Path
    log: IO[str]
    started: float
    note: dict[str, Any] = field(default_factory=dict)
    ready_s: float = 0.0

    def log_tail(self) -> str:
        return self.ready_file.with_name("stderr.log").read_text(encoding="utf-8")[-3000:]


def child_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NOTIFY_SOCKET", "WATCHDOG_USEC"}}
    env.update(HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(workdir / "hf-home"))
    return env


def start_daemon(config: Path, use: Sequence[str]) -> Child:
    ready = config.with_name("ready.json")
    argv = [sys.executable, __file__, "--child", str(config), str(ready), ",".join(use)]
    log = config.with_name("stderr.log").open("w", encoding="utf-8")
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=log,
        text=True,
        env=child_env(config.parent),
        cwd=config.parent,
    )
    return Child(proc, ready, log, started)


def wait_ready(child: Child, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not child.ready_file.exists():
        if child.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"daemon exited or hung before ready:\n{child.log_tail()}")
        time.sleep(0.005)
    child.note = json.loads(child.ready_file.read_text(encoding="utf-8"))
    child.ready_s = child.note["ready_monotonic"] - child.started


def stop_daemon(child: Child) -> None:
    assert child.proc.stdin is not None
    child.proc.stdin.close()
    try:
        if child.proc.wait(timeout=60) != 0:
            raise RuntimeError(f"daemon exited {child.proc.returncode}:\n{child.log_tail()}")
    finally:
        child.log.close()


def measure_idle(
    emus: Emulators, workdir: Path, *, sdks: bool, runs: int, settle: float
) -> dict[str, Any]:
    """Median memory of an idle daemon over ``runs`` fresh processes."""
    samples: list[dict[str, float]] = []
    notes: list[dict[str, Any]] = []
    for i in range(runs):
        config = write_agent(workdir / f"{'sdk' if sdks else 'plain'}{i}", emus, sdks=sdks)
        daemon = start_daemon(config, ["openai", "huggingface"] if sdks else [])
        try:
            wait_ready(daemon)
            time.sleep(settle)
            samples.append({**proc_memory(daemon.proc.pid), "ready_s": daemon.ready_s})
            notes.append(daemon.note)
        finally:
            stop_daemon(daemon)
    result: dict[str, Any] = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    result["modules"] = statistics.median(n["modules"] for n in notes)
    result["sdks"] = notes[-1]["sdks"]
    result["jobs"] = notes[-1]["jobs"]
    for key in ("first_image_s", "second_image_s"):
        names = notes[-1][key]
        result[key] = {n: statistics.median(note[key][n] for note in notes) for n in names}
    return result


def measure_side_by_side(
    emus: Emulators, workdir: Path, count: int, settle: float
) -> list[dict[str, float]]:
    """``count`` no-SDK daemons at once; the memory of each once all are idle."""
    daemons = []
    try:
        for i in range(count):
            daemons.append(start_daemon(write_agent(workdir / f"many{i}", emus, sdks=False), []))
        for d in daemons:
            wait_ready(d)
        time.sleep(settle)
        return [proc_memory(d.proc.pid) for d in daemons]
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                stop_daemon(d)


# --------------------------------------------------------------------------- report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text(encoding="utf-8").split()[1])
        mem = f", {kb / MIB:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per timing (median)")
    parser.add_argument("--rss-runs", type=int, default=3, help="daemons per memory figure")
    parser.add_argument("--personas", type=int, default=4, help="daemons side by side")
    parser.add_argument("--settle", type=float, default=2.0, help="idle seconds before reading")
    parser.add_argument("--vps-mib", type=int, default=1024, help="VPS memory for the estimate")
    parser.add_argument(
        "--reserve-mib", type=int, default=256, help="kept for the OS on that VPS (estimate)"
    )
    parser.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        import asyncio

        config, ready, use = args.child
        asyncio.run(_child_daemon(config, ready, [u for u in use.split(",") if u]))
        return 0

    began = time.monotonic()
    script = Path(sys.executable).with_name("glimpse-agent")
    help_argv = [str(script)] if script.exists() else [sys.executable, "-m", "glimpse_agent"]
    figures: dict[str, Any] = {
        "python_pass_s": median_wall([sys.executable, "-c", "pass"], args.runs),
        "help_s": median_wall([*help_argv, "--help"], args.runs),
        "import_cli_us": import_time_us(["glimpse_agent.cli"], args.runs),
        "import_run_us": import_time_us(
            ["glimpse_agent.run.assemble", "glimpse_agent.run.daemon"], args.runs
        ),
        "modules_cli": modules_after("import glimpse_agent.cli"),
        "modules_run": modules_after("import glimpse_agent.run.assemble, glimpse_agent.run.daemon"),
    }
    workdir = Path(tempfile.mkdtemp(prefix="glimpse-bench-"))
    try:
        with emulators() as emus:
            figures["plain"] = measure_idle(
                emus, workdir, sdks=False, runs=args.rss_runs, settle=args.settle
            )
            figures["sdk"] = measure_idle(
                emus, workdir, sdks=True, runs=args.rss_runs, settle=args.settle
            )
            figures["many"] = measure_side_by_side(emus, workdir, args.personas, args.settle)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    plain, sdk, many = figures["plain"], figures["sdk"], figures["many"]
    pss_each = statistics.mean(m["Pss"] for m in many)
    # Private pages are paid per persona; shared ones (interpreter, .so files) once.
    budget = args.vps_mib - args.reserve_mib
    uss_each = statistics.mean(m["USS"] for m in many)
    shared = statistics.mean(m["VmRSS"] - m["USS"] for m in many)
    fit = int((budget - shared) // uss_each)
    fit_sdk = int((budget - (sdk["VmRSS"] - sdk["USS"])) // sdk["USS"])
    first = sdk["first_image_s"]
    second = sdk["second_image_s"]
    rows = [
        ("`python -c pass` (reference)", f"{figures['python_pass_s'] * 1000:.0f} ms", "median"),
        ("`glimpse-agent --help`", f"{figures['help_s'] * 1000:.0f} ms", "median wall"),
        (
            "import `glimpse_agent.cli`",
            f"{figures['import_cli_us'] / 1000:.1f} ms",
            f"`-X importtime`, {figures['modules_cli']} modules in `sys.modules`",
        ),
        (
            "import `glimpse_agent.run.assemble` + `.scheduler`",
            f"{figures['import_run_us'] / 1000:.0f} ms",
            f"what `run` imports first; {figures['modules_run']} modules",
        ),
        (
            "idle daemon, no SDK backends: RSS / HWM",
            f"{plain['VmRSS']:.1f} / {plain['VmHWM']:.1f} MiB",
            f"local images, template captions; {plain['jobs']} jobs scheduled, "
            f"SDKs loaded: {', '.join(plain['sdks']) or 'none'}",
        ),
        (
            "idle daemon, no SDK backends: PSS / USS",
            f"{plain['Pss']:.1f} / {plain['USS']:.1f} MiB",
            f"{plain['modules']:.0f} modules",
        ),
        (
            "idle daemon, openai + huggingface used once: RSS / HWM",
            f"{sdk['VmRSS']:.1f} / {sdk['VmHWM']:.1f} MiB",
            f"SDKs loaded: {', '.join(sdk['sdks'])}",
        ),
        (
            "idle daemon, openai + huggingface used once: PSS / USS",
            f"{sdk['Pss']:.1f} / {sdk['USS']:.1f} MiB",
            f"{sdk['modules']:.0f} modules",
        ),
        (
            "cost of the two SDKs (RSS)",
            f"+{sdk['VmRSS'] - plain['VmRSS']:.1f} MiB",
            "what lazy imports save a persona that does not use them",
        ),
        (
            "start → ready (no SDKs)",
            f"{plain['ready_s']:.2f} s",
            "process start to scheduler running with the plan",
        ),
        (
            "first / second image, openai",
            f"{first.get('openai', 0):.2f} / {second.get('openai', 0):.3f} s",
            "first includes SDK import + client (emulator on loopback)",
        ),
        (
            "first / second image, huggingface",
            f"{first.get('huggingface', 0):.2f} / {second.get('huggingface', 0):.3f} s",
            "first includes SDK import + client (emulator on loopback)",
        ),
        (
            f"{len(many)} no-SDK personas side by side: PSS each",
            f"{pss_each:.1f} MiB",
            f"USS each {uss_each:.1f} MiB, RSS each "
            f"{statistics.mean(m['VmRSS'] for m in many):.1f} MiB (RSS counts shared pages "
            "in every process)",
        ),
        (
            f"personas on a {args.vps_mib} MiB VPS",
            f"~{fit} (no SDKs) / ~{fit_sdk} (both SDKs)",
            f"({args.vps_mib} - {args.reserve_mib} MiB for the OS - shared pages once) "
            "/ USS per persona",
        ),
    ]
    print(f"Machine: {machine()}")
    print(f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`")
    print()
    print("| measure | value | notes |")
    print("| --- | --- | --- |")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")
    print()
    print(f"(bench took {time.monotonic() - began:.0f} s)")
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
