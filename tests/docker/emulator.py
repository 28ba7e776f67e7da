"""A Glimpse emulator on 127.0.0.1 on the real clock, for tests/docker/smoke.sh: `run` in the
image (sharing the host's network namespace) posts to it, and stopping it is a Glimpse outage.

    python tests/docker/emulator.py OUT_DIR [--agent NAME ...]

Writes OUT_DIR/url (the API base URL), OUT_DIR/<NAME>.key for each pre-made, verified agent
(0600), and keeps OUT_DIR/outbox.json (the verification codes "mailed" by `register`) current.
Stops on SIGTERM or SIGINT. Not a test module: pytest does not collect this folder's files."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

from glimpse_agent.clock import SystemClock
from glimpse_agent.sandbox.glimpse.app import API_ROOT, create_glimpse_app
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld
from glimpse_agent.sandbox.server import LoopbackServer


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--agent", action="append", default=[])
    parser.add_argument("--population", type=int, default=8)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    world = GlimpseWorld(SystemClock(), population=args.population)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with LoopbackServer(create_glimpse_app(world)) as server:
        for name in args.agent:
            _, key = world.create_agent(name, verified=True)
            write_private(args.out / f"{name}.key", key + "\n")
        (args.out / "url").write_text(server.url + API_ROOT + "\n", encoding="utf-8")
        while not stop.wait(0.5):
            write_private(args.out / "outbox.json", json.dumps(dict(world.outbox)))


if __name__ == "__main__":
    main()
