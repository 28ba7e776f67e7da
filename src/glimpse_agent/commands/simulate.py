"""`glimpse-agent simulate`: the real planner and agent on a simulated clock, as fast as the
services answer, and never a real write.

By default it runs against the built-in emulators (as `sandbox` does) with the config's shape:
its persona, its image backend order and caption order, its safety and daemon settings; the
emulators' own URLs and keys replace the configured ones. ``--configured-endpoints`` runs against
the endpoints in agent.toml instead, and only when every one of them is on this machine, unless
``--real-writes`` says that real posts on real services are meant (a real Glimpse counts its
daily limits on its own clock, so a simulated week against it hits them).

Either way it works on a throw-away copy of the ledger: the real state directory is read, never
written and never locked, so a simulated week cannot leave the persona's ledger in the future.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from glimpse_agent.clock import SimulatedClock
from glimpse_agent.commands._common import setup_logging
from glimpse_agent.commands._progress import DayProgress
from glimpse_agent.config import AgentConfig, LoadedAgent, load_agent, parse_config
from glimpse_agent.run.assemble import open_runtime
from glimpse_agent.run.simulation import Simulation, SimulationResult
from glimpse_agent.sandbox.stack import SandboxStack

# What the state directory holds that a run reads: the ledger (and its backup), older posts,
# and the fingerprint of the image key stored on Glimpse. Not ``lock``, not the key file.
LEDGER_FILES = ("ledger.json", "ledger.json.bak", "history.jsonl", "glimpse_image_key.sha256")
# Where the SDKs send a request when the config names no base_url.
HUGGINGFACE_DEFAULT = "https://router.huggingface.co"
OPENAI_DEFAULT = "https://api.openai.com/v1"
EXIT_USAGE = 2


def configured_endpoints(config: AgentConfig) -> list[tuple[str, str]]:
    """``(key, url)`` for every service this config would reach: Glimpse, each image backend
    in ``[images] order``, each caption source in ``[captions] order``."""
    found = [("glimpse.base_url", config.glimpse.base_url)]
    images = config.images
    for name in images.chain:
        if name == "glif" and images.glif is not None:
            found += [
                ("images.glif.base_url", images.glif.base_url),
                ("images.glif.api_url", images.glif.api_url),
            ]
        elif name == "viewcomfy" and images.viewcomfy is not None:
            found.append(("images.viewcomfy.url", images.viewcomfy.url))
        elif name == "huggingface" and images.huggingface is not None:
            url = images.huggingface.base_url or HUGGINGFACE_DEFAULT
            found.append(("images.huggingface.base_url", url))
        elif name == "openai" and images.openai is not None:
            found.append(("images.openai.base_url", images.openai.base_url or OPENAI_DEFAULT))
    for source in config.captions.order or []:
        if source == "langflow" and config.captions.langflow is not None:
            found.append(("captions.langflow.base_url", config.captions.langflow.base_url))
        elif source == "llm" and config.llm is not None:
            found.append(("llm.base_url", config.llm.base_url))
    return found


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine by its very name (``localhost``, 127.0.0.0/8,
    ``::1``). No DNS lookup: a name that merely resolves to loopback today may not tomorrow."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def copy_ledger(real: Path, into: Path) -> Path:
    """A state directory at ``into`` holding a copy of ``real``'s ledger files (none if ``real``
    has none yet). ``real`` is only read: no lock, no repair, no new file."""
    into.mkdir(mode=0o700, parents=True)
    for name in LEDGER_FILES:
        source = real / name
        if source.is_file():
            shutil.copyfile(source, into / name)
    return into


def _refusal(remote: list[tuple[str, str]]) -> str:
    where = ", ".join(f"{url} ({key})" for key, url in remote)
    return (
        f"glimpse-agent: simulate --configured-endpoints would reach {where}, not on this "
        "machine: a simulation there publishes real posts, likes, comments and follows and "
        "spends real money. Add --real-writes if that is what you mean, or leave out "
        "--configured-endpoints to simulate against the built-in emulators."
    )


def _header(loaded: LoadedAgent, days: int, *, configured: bool) -> str:
    name, config = loaded.persona.name, loaded.config
    if configured:
        return (
            f"Simulating {name} for {days} days against the endpoints in {config.source}, "
            "on a copy of its ledger."
        )
    return (
        f"Simulating {name} for {days} days against the built-in emulators (images: "
        f"{', '.join(config.images.chain)}; captions: {', '.join(config.captions.order or [])}), "
        "on a copy of its ledger; --configured-endpoints uses the configured services instead."
    )


async def main(args: argparse.Namespace) -> int:
    if args.real_writes and not args.configured_endpoints:
        print("glimpse-agent: --real-writes only goes with --configured-endpoints", file=sys.stderr)
        return EXIT_USAGE
    loaded = load_agent(Path(args.config))  # ConfigError -> exit 2
    setup_logging(args, loaded.config.log_level)
    if args.days < 1 or args.days > 366:
        print("glimpse-agent: --days must be between 1 and 366", file=sys.stderr)
        return EXIT_USAGE
    first = date.fromisoformat(args.start) if args.start else datetime.now(UTC).date()
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    if args.configured_endpoints:
        remote = [(k, u) for k, u in configured_endpoints(loaded.config) if not is_loopback(u)]
        if remote and not args.real_writes:
            print(_refusal(remote), file=sys.stderr)
            return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="glimpse-simulate-") as tmp:
        scratch = Path(tmp)
        state = copy_ledger(loaded.config.state_dir, scratch / "state")
        # huggingface_hub caches under HF_HOME: in the throw-away folder, not the state dir.
        os.environ.setdefault("HF_HOME", str(scratch / "hf-cache"))
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        print(_header(loaded, args.days, configured=args.configured_endpoints), flush=True)
        progress = DayProgress(start, args.days)  # a bar only on a terminal
        setup_logging(args, loaded.config.log_level, stream=progress.shared_stream())
        try:
            if args.configured_endpoints:
                result = await _against_configured(loaded, state, start, args.days, progress)
            else:
                result = await _against_emulators(
                    loaded, state, scratch, start, args.days, progress
                )
        finally:
            progress.close()
    for line in result.summary_lines():
        print(line)
    print("(on a copy of the ledger, now discarded: the persona's state directory is unchanged)")
    failures = sum(d.post_failures for days in result.days.values() for d in days.values())
    return 0 if failures == 0 else 1


async def _against_configured(
    loaded: LoadedAgent, state: Path, start: datetime, days: int, progress: DayProgress
) -> SimulationResult:
    clock = SimulatedClock(start)
    async with await open_runtime(loaded, clock=clock, state_dir=state) as runtime:
        result = await Simulation([runtime.agent], clock, on_advance=progress).run(days)
    progress.finish()
    return result


async def _against_emulators(
    loaded: LoadedAgent,
    state: Path,
    scratch: Path,
    start: datetime,
    days: int,
    progress: DayProgress,
) -> SimulationResult:
    config, persona = loaded.config, loaded.persona
    with SandboxStack(start=start) as stack:
        key = await stack.register(persona.name, f"{persona.name}@owner.example")
        raw = stack.agent_toml_like(config, state, api_key=key)
        emulated = parse_config(raw, source=scratch / "agent.toml")
        async with await open_runtime(LoadedAgent(emulated, persona), clock=stack.clock) as rt:
            result = await Simulation([rt.agent], stack.clock, on_advance=progress).run(days)
        progress.finish()
    return result
