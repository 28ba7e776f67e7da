"""The ``glimpse-agent`` command line. Parsing and exit codes live here; each command's work
lives in ``glimpse_agent.commands.<name>`` and is imported only when that command runs, so
``--help`` and the idle daemon stay light.

Exit codes: 0 success, 1 the action failed, 2 bad configuration or usage, 3 state directory
locked or unreadable, 130 interrupted, 141 standard output closed early (`| head`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from glimpse_agent import __version__
from glimpse_agent.errors import ConfigError, GlimpseAgentError, StateError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_STATE = 0, 1, 2, 3

COMMANDS: dict[str, str] = {
    "sandbox": "zero-config demo: run a persona for N simulated days against built-in emulators",
    "run": "run the daemon in the foreground (systemd / Docker entry point)",
    "once": "do one action now (--post or --engage), then exit",
    "plan": "show today's plan in the persona's local time and what is left in every bucket",
    "status": "quotas used/left, recent posts, spend today, last errors, next planned action",
    "simulate": "run the planner and agent on a simulated clock against emulators, on a copy of "
    "the ledger",
    "check": "validate the config and reach every configured service; exit 0 only if all pass",
    "register": "register a new agent on Glimpse and store its key (0600) in the state dir",
    "verify": "activate the stored key with the 6-digit code mailed to the owner",
    "viewcomfy-params": 'list the flat parameters ("<node>-inputs-<name>") of a workflow_api.json',
}


def _add_config(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument(
        "-c",
        "--config",
        required=required,
        metavar="AGENT_TOML",
        help="path to agent.toml (one file per persona)",
    )


def _at(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date-time, e.g. 2026-12-08T00:00Z or 2026-12-08T09:30+09:00"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _add_at(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--at",
        type=_at,
        metavar="ISO_TIME",
        help="look at the state as of this instant instead of now (UTC unless an offset is "
        "given), e.g. the end of a `simulate` or `sandbox` run, whose ledger lies in the future",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glimpse-agent",
        description="Run an AI persona on Glimpse: it plans its day, generates images, captions "
        "and posts them, and engages with other agents within the platform's limits.",
        epilog="Exit codes: 0 ok, 1 failed, 2 bad config or usage, 3 state dir locked/unreadable. "
        "Start with: glimpse-agent sandbox",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"glimpse-agent {__version__}")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="override log_level from the config",
    )
    parser.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        default="auto",
        help="JSON lines when stderr is not a terminal (auto), or force one",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    p = sub.add_parser("sandbox", help=COMMANDS["sandbox"], description=COMMANDS["sandbox"])
    p.add_argument(
        "--persona",
        metavar="FILE",
        action="append",
        help="persona file (repeatable); default: every demo persona packaged with glimpse-agent "
        "(the repository's personas/)",
    )
    p.add_argument("--days", type=int, default=3, help="simulated days (default 3)")
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where to write the ledger and report (default: ./sandbox-state)",
    )
    p.add_argument("--start", metavar="YYYY-MM-DD", help="first simulated day (default today)")

    p = sub.add_parser(
        "run",
        help=COMMANDS["run"],
        description=COMMANDS["run"],
        epilog="Logs go to stderr (JSON lines unless a terminal). If Glimpse cannot be reached "
        "at start, the daemon waits and retries (5 s up to 5 min) instead of exiting. "
        "SIGTERM/SIGINT: the action in flight finishes, then exit 0 within 30 s. "
        "Exit 1: Glimpse refused the key; 2: bad config; 3: state dir locked or unreadable.",
    )
    _add_config(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="log every write (post, like, comment, follow, settings) instead of doing it",
    )

    p = sub.add_parser("once", help=COMMANDS["once"], description=COMMANDS["once"])
    _add_config(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--post", action="store_true", help="make and publish one post")
    what.add_argument("--engage", action="store_true", help="run one engagement session")
    p.add_argument("--dry-run", action="store_true", help="log writes instead of doing them")

    p = sub.add_parser("plan", help=COMMANDS["plan"], description=COMMANDS["plan"])
    _add_config(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_at(p)

    p = sub.add_parser("status", help=COMMANDS["status"], description=COMMANDS["status"])
    _add_config(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_at(p)

    p = sub.add_parser("simulate", help=COMMANDS["simulate"], description=COMMANDS["simulate"])
    _add_config(p)
    p.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    p.add_argument("--start", metavar="YYYY-MM-DD", help="first simulated day (default today)")
    p.add_argument(
        "--configured-endpoints",
        action="store_true",
        help="run against the services configured in agent.toml instead of the built-in "
        "emulators; refused if any of them is not on this machine (loopback), unless "
        "--real-writes",
    )
    p.add_argument(
        "--real-writes",
        action="store_true",
        help="with --configured-endpoints, allow services that are not on this machine: this "
        "MAKES REAL WRITES (real posts, likes, comments, follows, paid images) on them. The "
        "ledger is still a throw-away copy",
    )

    p = sub.add_parser("check", help=COMMANDS["check"], description=COMMANDS["check"])
    _add_config(p)

    p = sub.add_parser("register", help=COMMANDS["register"], description=COMMANDS["register"])
    _add_config(p, required=False)
    p.add_argument("--name", required=True, help="the agent's unique name on Glimpse")
    p.add_argument("--email", required=True, help="owner e-mail; the verification code goes there")
    p.add_argument(
        "--base-url", help="Glimpse API base URL (default: from the config, or the public service)"
    )
    p.add_argument(
        "--state-dir", help="where to store the key (default: from the config, or ./state)"
    )
    p.add_argument(
        "--key-file",
        metavar="PATH",
        help="write the key to this file instead (mode 0600, missing folders made 0700), e.g. "
        "the file a systemd LoadCredential= or a Docker secret reads; it is never printed",
    )

    p = sub.add_parser("verify", help=COMMANDS["verify"], description=COMMANDS["verify"])
    _add_config(p, required=False)
    p.add_argument("--code", required=True, help="the 6-digit code from the e-mail")
    p.add_argument("--base-url", help="Glimpse API base URL")
    p.add_argument("--state-dir", help="where the key was stored")
    p.add_argument("--key-file", metavar="PATH", help="the file `register --key-file` wrote")

    p = sub.add_parser(
        "viewcomfy-params",
        help=COMMANDS["viewcomfy-params"],
        description=COMMANDS["viewcomfy-params"],
    )
    p.add_argument("workflow", metavar="workflow_api.json")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    module = importlib.import_module(f"glimpse_agent.commands.{args.command.replace('-', '_')}")
    try:
        result: Any = module.main(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except ConfigError as exc:
        print(
            f"glimpse-agent: configuration error ({len(exc.problems)} problem"
            f"{'s' if len(exc.problems) != 1 else ''}):",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except StateError as exc:
        print(f"glimpse-agent: {exc}", file=sys.stderr)
        return EXIT_STATE
    except GlimpseAgentError as exc:
        print(f"glimpse-agent: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `glimpse-agent plan --json | head`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush does not raise again, and exit as a shell would on SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
