"""The ``glimpse-agent`` command line. Parsing and exit codes live here; each command's work
lives in ``glimpse_agent.commands.<name>`` and is imported only when that command runs, so
``--help`` and the idle daemon stay light.

Exit codes: 0 success, 1 the action failed, 2 bad configuration or usage, 3 state directory
locked, unreadable, or not writable by this user (a human must look), 4 state directory cannot
be written right now (disk full, read-only: may pass, so systemd restarts on it), 5 Glimpse
refused the key (re-register or fix the credential), 130 interrupted, 141 standard output
closed early (`| head`). ``health`` answers only 0 (healthy) or 1 (unhealthy), as Docker's
HEALTHCHECK wants. With ``--json``, a failure is a JSON object on stdout too (``{"error": ...,
"exit_code": ...}``), so stdout is always JSON.

Logging is configured before anything else runs (``--log-level``/``--log-format``, then the
config's level once it is read), so a warning from the ledger while it opens is a JSON line on
stderr, redacted, never text on stdout. The daemon's fatal error is one more JSON line
(``"event": "fatal"``, with ``exit_code``) when its logs are JSON; the other commands print it
as ``glimpse-agent: ...`` text unless ``--log-format json``.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from glimpse_agent import __version__
from glimpse_agent.errors import (
    ConfigError,
    GlimpseAgentError,
    KeyRefused,
    StateError,
    StatePermissionDenied,
    StateUnwritable,
    Unauthorized,
)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_STATE, EXIT_UNWRITABLE = 0, 1, 2, 3, 4
EXIT_KEY_REFUSED = 5
#: OS errors of the machine (not of the program) that may pass: exit 4, no traceback.
_MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
#: A refused permission does not pass by waiting: exit 3, naming the path, our uid and the fix.
_PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM})
#: The exit codes, for the help texts and the README.
EXIT_CODES = (
    "Exit codes: 0 ok; 1 failed; 2 bad config or usage; 3 state dir locked, damaged, or not "
    "writable by this user (chown it or set state_dir); 4 state dir not writable now (disk "
    "full, read-only: may pass); 5 Glimpse refused the key (re-register or fix the credential "
    "file). 2, 3 and 5 need a human: systemd and Compose do not restart on them."
)

COMMANDS: dict[str, str] = {
    "sandbox": "zero-config demo: run a persona for N simulated days against built-in emulators",
    "run": "run the daemon in the foreground (systemd / Docker entry point)",
    "once": "do one action now (--post or --engage), then exit",
    "plan": "show today's plan in the persona's local time and what is left in every bucket",
    "status": "quotas used/left, recent posts, spend today, last errors, next planned action",
    "simulate": "run the planner and agent on a simulated clock against emulators, on a copy of "
    "the ledger",
    "check": "validate the config and reach every configured service; exit 0 only if all pass",
    "health": "is this config's daemon healthy? exit 0 yes, 1 no, and one line saying why",
    "register": "register a new agent on Glimpse; store its key (0600) where the config reads it",
    "verify": "activate the stored key with the 6-digit code mailed to the owner",
    "viewcomfy-params": 'list the flat parameters ("<node>-inputs-<name>") of a workflow_api.json',
    "fleet": "see and steer a running fleet (`run --fleet DIR`): status, pause, resume, reload, "
    "health",
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


def _add_control(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--control",
        metavar="PATH",
        help="the fleet's control socket (0600; default: $GLIMPSE_FLEET_CONTROL, else "
        "$RUNTIME_DIRECTORY/fleet.sock, else $XDG_RUNTIME_DIR/glimpse-agent/fleet.sock, else "
        "/tmp/glimpse-agent-<uid>/fleet.sock)",
    )


def _add_fleet(sub: Any) -> None:
    p = sub.add_parser(
        "fleet",
        help=COMMANDS["fleet"],
        description=COMMANDS["fleet"] + ". Talks to the running process over its control "
        "socket (0600, no network port).",
        epilog="Exit codes: 0 ok, 1 no fleet answers or it refused (e.g. an unknown name).",
    )
    verbs = p.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    q = verbs.add_parser(
        "status",
        help="every persona: state, next action, quotas left, last error",
        description="every persona: state (starting, running, stuck, paused, failed, "
        "config_error, stopped), next action, quotas left, last error",
    )
    q.add_argument("--json", action="store_true", help="machine-readable output")
    _add_control(q)
    for verb, text in (
        (
            "pause",
            "stop one persona (its action in flight finishes); it stays paused, also "
            "across restarts of the fleet, until resume",
        ),
        ("resume", "start a paused (or failed) persona again"),
    ):
        q = verbs.add_parser(verb, help=text, description=text)
        q.add_argument("name", help="the persona's name (or its agent.toml's file name stem)")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        _add_control(q)
    q = verbs.add_parser(
        "reload",
        help="re-read the configs (as SIGHUP): start new files, stop removed ones, restart "
        "changed ones; the others are not touched",
        description="re-read the configs (as SIGHUP): start new files, stop removed ones, "
        "restart changed ones and failed ones; the others are not touched",
    )
    q.add_argument("--json", action="store_true", help="machine-readable output")
    _add_control(q)
    text = (
        "is the fleet healthy? exit 0 yes, 1 no (only those two: Docker's HEALTHCHECK); one "
        "line saying why, then one line per persona"
    )
    q = verbs.add_parser(
        "health",
        help=text,
        description=text,
        epilog="Unhealthy when no fleet answers on the control socket (or none within "
        "--timeout: its loop is gone or wedged), when a persona is stuck past its deadline "
        "(the watchdog is then no longer fed either), or when every persona that is not "
        "paused is unhealthy by `glimpse-agent health`'s rules with its own [ops] "
        "unhealthy_after_minutes (Glimpse unreachable, or nothing done, for longer than that; "
        "failed; a config that does not load). One unhealthy persona among healthy ones "
        "leaves the fleet healthy and is named; a paused persona counts as neither.",
    )
    q.add_argument("--json", action="store_true", help="machine-readable output, per persona")
    q.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the fleet's answer (default 10)",
    )
    _add_control(q)


def _listen_flag(text: str) -> str:
    from glimpse_agent.config.models import listen_address

    try:
        listen_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glimpse-agent",
        description="Run an AI persona on Glimpse: it plans its day, generates images, captions "
        "and posts them, and engages with other agents within the platform's limits.",
        epilog=EXIT_CODES + " Start with: glimpse-agent sandbox",
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
        "A state dir that is full or read-only at start is waited for the same way. Each action "
        "has a deadline ([daemon] action_deadline_minutes, derived from the timeouts by "
        "default): past it, it is cancelled and the next one runs. "
        "SIGTERM/SIGINT: the action in flight finishes, then exit 0 within 30 s. "
        "READY=1 goes to systemd once the config and the state dir are sound; a Glimpse that "
        "cannot be reached is then waited for while ready (STATUS= and `health` say so). "
        "Exit 1: a crash (systemd restarts); 2: bad config; 3: state dir locked by another "
        "process, damaged beyond its backup, or not writable by this user; 5: Glimpse refused "
        "the key (2, 3, 5: systemd does not restart, a human must look); 4: state dir not "
        "writable now, e.g. disk full or read-only (systemd restarts). "
        "A fleet (-c repeated, or --fleet DIR) runs many personas in one process; see "
        "`glimpse-agent fleet --help`. It exits only when no persona is left running or paused "
        "(2 when no config loads at all), SIGHUP re-reads the configs.",
    )
    p.add_argument(
        "-c",
        "--config",
        action="append",
        metavar="AGENT_TOML",
        help="path to agent.toml (one file per persona); repeat it to run several personas in "
        "one process (a fleet)",
    )
    p.add_argument(
        "--fleet",
        metavar="DIR",
        help="run every *.toml in DIR as one persona's agent.toml, in one process; each keeps "
        "its own persona file, state dir, ledger, lock and keys",
    )
    _add_control(p)
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=_listen_flag,
        help="serve /healthz and /metrics (Prometheus, no authentication: keep it on loopback "
        "or a private interface) on HOST:PORT, for every persona of this run, each labelled "
        "persona=...; overrides [ops] listen. Off by default. A fleet has one listener: "
        "without this flag it takes the first file's (in name order) [ops] listen, and a "
        "file naming another address is ignored with a warning; a persona never binds one "
        "of its own",
    )
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

    p = sub.add_parser(
        "health",
        help=COMMANDS["health"],
        description=COMMANDS["health"],
        epilog="Reads the heartbeat file the daemon of this config writes in its state dir (it "
        "takes no lock, so it works while the daemon runs). Unhealthy when the daemon is not "
        "running, when an action is stuck past its deadline, when the loop has shown no "
        "progress for 10 minutes, or when Glimpse has been unreachable, the state dir "
        "unwritable, or every action failing for longer than [ops] unhealthy_after_minutes "
        "(default 30). Exit 0 healthy, 1 unhealthy, whatever the cause (a bad config "
        "included): Docker reserves exit 2. For a fleet: `glimpse-agent fleet health`.",
    )
    _add_config(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")

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

    _add_fleet(sub)

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
    # Before any import of a command: whatever logs while the config or the ledger is read
    # goes to stderr in the chosen format, redacted. ``load`` refines the level from the config.
    _early_logging(args)
    as_json = bool(getattr(args, "json", False))
    # The daemon's stderr is a log stream (journald, Docker): its fatal error joins it as a
    # JSON line. The other commands talk to a person (or a script reading --json on stdout)
    # and print it as text, unless --log-format json asks for JSON everywhere.
    fatal_as_json = getattr(args, "log_format", "auto") == "json" or args.command in _LOG_STREAMS

    def _say_fatal(
        text: str, code: int, kind: str, problems: list[str] | None = None, **fields: Any
    ) -> None:
        _tell_fatal(fatal_as_json, text, code, kind, problems, **fields)

    try:
        module = importlib.import_module(f"glimpse_agent.commands.{args.command.replace('-', '_')}")
        result: Any = module.main(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except ConfigError as exc:
        text = (
            f"configuration error ({len(exc.problems)} problem"
            f"{'s' if len(exc.problems) != 1 else ''})"
        )
        problems = [str(p) for p in exc.problems]
        _say_fatal(text, EXIT_CONFIG, "configuration", problems)
        return _failed(as_json, EXIT_CONFIG, "configuration", problems)
    except StateUnwritable as exc:
        if exc.errno in _PERMISSION_ERRNOS:
            text = f"{exc} (glimpse-agent runs as uid {os.geteuid()}: {_OWNER_FIX})"
            _say_fatal(text, EXIT_STATE, "state_permission")
            return _failed(as_json, EXIT_STATE, "state_permission", [text])
        _say_fatal(str(exc), EXIT_UNWRITABLE, "state_unwritable")
        return _failed(as_json, EXIT_UNWRITABLE, "state_unwritable", [str(exc)])
    except StatePermissionDenied as exc:
        _say_fatal(str(exc), EXIT_STATE, "state_permission", path=exc.path, uid=exc.uid)
        return _failed(as_json, EXIT_STATE, "state_permission", [str(exc)])
    except StateError as exc:
        _say_fatal(str(exc), EXIT_STATE, "state")
        return _failed(as_json, EXIT_STATE, "state", [str(exc)])
    except Unauthorized as exc:
        if not isinstance(exc, KeyRefused) and exc.service != "glimpse":
            _say_fatal(str(exc), EXIT_FAILED, "failed")
            return _failed(as_json, EXIT_FAILED, "failed", [str(exc)])
        text = str(exc) if isinstance(exc, KeyRefused) else f"{exc}. {_KEY_FIX}"
        _say_fatal(text, EXIT_KEY_REFUSED, "key_refused")
        return _failed(as_json, EXIT_KEY_REFUSED, "key_refused", [text])
    except GlimpseAgentError as exc:
        _say_fatal(str(exc), EXIT_FAILED, "failed")
        return _failed(as_json, EXIT_FAILED, "failed", [str(exc)])
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `glimpse-agent plan --json | head`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush does not raise again, and exit as a shell would on SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        if exc.errno in _PERMISSION_ERRNOS and exc.filename:
            # A write our own code did not guard (a cache, a report) refused to this user.
            from glimpse_agent.run.statedir import permission_denied

            denied = permission_denied(str(exc.filename))
            _say_fatal(str(denied), EXIT_STATE, "state_permission")
            return _failed(as_json, EXIT_STATE, "state_permission", [str(denied)])
        if exc.errno not in _MACHINE_ERRNOS:
            return _crashed(fatal_as_json, exc)
        # A write our own code did not expect to fail (a cache, a report): the same machine
        # fault as a full or read-only state directory, and it may pass the same way.
        text = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        _say_fatal(f"{text} (is the disk full or read-only?)", EXIT_UNWRITABLE, "machine")
        return _failed(as_json, EXIT_UNWRITABLE, "machine", [text])
    except Exception as exc:
        return _crashed(fatal_as_json, exc)


_OWNER_FIX = (
    "give the state dir to that user (chown -R <uid> <state_dir>) or set state_dir in the "
    "config to a directory it may write"
)
_KEY_FIX = (
    "Glimpse refused the key: check the key in the config's [glimpse] api_key / api_key_file "
    "(the credential or secret file) or in <state_dir>/glimpse_api_key, or register again "
    "(`glimpse-agent register`, then `glimpse-agent verify --code`)"
)


#: Commands whose stderr is a log stream rather than a person's terminal.
_LOG_STREAMS = frozenset({"run"})


def _tell_fatal(
    as_json: bool,
    text: str,
    code: int,
    kind: str,
    problems: list[str] | None = None,
    **fields: Any,
) -> None:
    """The fatal error on stderr: a JSON line when ``as_json`` and the logs are JSON lines (so
    a log shipper or ``jq`` never meets a stray text line), plain text otherwise."""
    from glimpse_agent.logs import get_logger, json_lines_enabled
    from glimpse_agent.redaction import redact

    if as_json and json_lines_enabled():
        extra = {"problems": problems} if problems else {}
        get_logger("glimpse_agent.cli").critical(
            "fatal", error=text, error_kind=kind, exit_code=code, **extra, **fields
        )
        return
    print(redact(f"glimpse-agent: {text}" + (":" if problems else "")), file=sys.stderr)
    for problem in problems or []:
        print(f"  {redact(problem)}", file=sys.stderr)


def _crashed(as_json: bool, exc: BaseException) -> int:
    """A bug: the traceback as Python prints it; in the daemon's JSON logs, one JSON line
    carrying it (``exception``), exit 1."""
    from glimpse_agent.logs import get_logger, json_lines_enabled

    if not (as_json and json_lines_enabled()):
        raise exc
    get_logger("glimpse_agent.cli").critical(
        "fatal",
        error=str(exc) or type(exc).__name__,
        error_kind="crash",
        error_type=type(exc).__name__,
        exit_code=EXIT_FAILED,
        exc_info=exc,
    )
    return EXIT_FAILED


def _early_logging(args: argparse.Namespace) -> None:
    from glimpse_agent.logs import configure_logging

    fmt = getattr(args, "log_format", "auto")
    configure_logging(
        getattr(args, "log_level", None) or "info",
        json=None if fmt == "auto" else fmt == "json",
    )


def _failed(as_json: bool, code: int, kind: str, problems: list[str]) -> int:
    """Exit ``code``; with ``--json`` also say why as a JSON object on stdout, so a script
    reading stdout always gets JSON."""
    if as_json:
        from glimpse_agent.redaction import redact

        error = {"error": kind, "exit_code": code, "problems": [redact(p) for p in problems]}
        print(json.dumps(error, indent=2))
    return code
