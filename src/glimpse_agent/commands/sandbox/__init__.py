"""`glimpse-agent sandbox`: zero configuration. Starts every emulator on loopback, registers the
shipped personas on the emulated Glimpse, runs them for N simulated days with the offline image
generator, prints what they did and writes an HTML report. ``audit`` checks the persona's
promises over the run, ``report`` writes the HTML.

May import: ``run``, ``sandbox`` and the rooms below them.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path

from glimpse_agent.commands._common import setup_logging
from glimpse_agent.commands._progress import DayProgress
from glimpse_agent.commands.sandbox.audit import audit, quota_use, report_posts
from glimpse_agent.commands.sandbox.report import PersonaReport, write_report
from glimpse_agent.config import LoadedAgent, load_persona, parse_config
from glimpse_agent.persona import Persona
from glimpse_agent.run.assemble import Runtime, open_runtime
from glimpse_agent.run.simulation import Simulation, SimulationResult
from glimpse_agent.sandbox.stack import SandboxStack
from glimpse_agent.sandbox.toml_writer import write_agent_toml

MARKER = ".glimpse-sandbox"


SANDBOX_HEADER = "Written by glimpse-agent sandbox; its endpoints are gone once it exits."


def default_personas() -> list[Path]:
    """The demo personas packaged with glimpse-agent (``glimpse_agent/personas/*.toml``; the
    repository's ``personas/`` is a link to them), wherever it was installed and whatever the
    current folder."""
    folder = resources.files("glimpse_agent").joinpath("personas")
    # A config names its persona by path, so the files must be on disk; an installed wheel
    # and an editable install both are (a zipped import is not, and finds none).
    if not isinstance(folder, Path) or not folder.is_dir():
        return []
    return sorted(folder.glob("*.toml"))


def _fresh_dir(path: Path) -> Path:
    """Empty ``path`` if a previous sandbox made it; refuse to touch a folder we did not make."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise SystemExit(
                f"glimpse-agent: {path} exists and was not made by the sandbox; "
                "choose another --state-dir"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, mode=0o700)
    (path / MARKER).write_text("made by glimpse-agent sandbox; safe to delete\n")
    return path


def main(args: argparse.Namespace) -> int:
    setup_logging(args, "warning")
    personas = [Path(p) for p in args.persona] if args.persona else default_personas()
    if not personas:
        print("glimpse-agent: no persona files found; pass --persona FILE", file=sys.stderr)
        return 2
    loaded_personas = [load_persona(p) for p in personas]  # ConfigError -> exit 2
    if args.days < 1 or args.days > 366:
        print("glimpse-agent: --days must be between 1 and 366", file=sys.stderr)
        return 2
    first = date.fromisoformat(args.start) if args.start else datetime.now(UTC).date()
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    root = _fresh_dir(Path(args.state_dir or "sandbox-state").resolve())
    progress = DayProgress(start, args.days)  # a bar only on a terminal
    setup_logging(args, "warning", stream=progress.shared_stream())
    return asyncio.run(_run(personas, loaded_personas, start, args.days, root, progress))


async def _run(
    personas: list[Path],
    loaded_personas: list[Persona],
    start: datetime,
    days: int,
    root: Path,
    progress: DayProgress,
) -> int:
    began = time.monotonic()
    with SandboxStack(start=start) as stack:
        runtimes: list[Runtime] = []
        try:
            for path, persona in zip(personas, loaded_personas, strict=True):
                key = await stack.register(persona.name, f"{persona.name}@owner.example")
                state = root / persona.name
                raw = stack.agent_toml(path.resolve(), state, api_key=key)
                config = parse_config(raw, source=state / "agent.toml")
                # Next to its ledger, so `status` and `plan` can be pointed at the run.
                write_agent_toml(state / "agent.toml", raw, header=SANDBOX_HEADER)
                runtimes.append(await open_runtime(LoadedAgent(config, persona), clock=stack.clock))
            sim = Simulation([r.agent for r in runtimes], stack.clock, on_advance=progress)
            result = await sim.run(days)
            progress.finish()
            findings = audit(stack.world, runtimes, result)
            reports = [_persona_report(r, result, stack) for r in runtimes]
        finally:
            progress.close()
            for r in runtimes:
                await r.close()
    elapsed = time.monotonic() - began
    report = write_report(
        root / "report.html",
        f"glimpse-agent sandbox: {days} days",
        reports,
        notes=[
            f"Simulated {start:%Y-%m-%d} + {days} days in {elapsed:.1f} s.",
            *findings.lines(),
        ],
    )
    _print_summary(result, findings.lines(), report, elapsed)
    first = root / loaded_personas[0].name / "agent.toml"
    # The ledgers lie in simulated time: look at them as of the end of the run.
    at = f"--at {result.end:%Y-%m-%dT%H:%MZ}"
    print(
        "Look closer (the ledgers stay; the emulators stopped): "
        f"glimpse-agent status -c {first} {at}\n  or: glimpse-agent plan -c {first} {at}"
    )
    return 0 if findings.ok else 1


def _persona_report(
    runtime: Runtime, result: SimulationResult, stack: SandboxStack
) -> PersonaReport:
    persona = runtime.agent.persona
    ledger = runtime.ledger.ledger
    days = sorted(
        {(result.start + timedelta(days=i)).date() for i in range((result.end - result.start).days)}
    )
    use, caps = quota_use(ledger, persona, days)
    return PersonaReport(
        name=persona.name,
        display_name=persona.display_name,
        timezone=persona.timezone,
        days=result.days.get(persona.name, {}),
        quota_use=use,
        quota_caps=caps,
        posts=report_posts(ledger, persona, runtime.agent.config),
    )


def _print_summary(
    result: SimulationResult, findings: list[str], report: Path, elapsed: float
) -> None:
    print(
        f"Simulated {result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC "
        f"in {elapsed:.1f} s"
    )
    for line in result.summary_lines():
        print(line)
    for line in findings:
        print(line)
    print(f"Report: {report}")
