"""The command line as a user meets it: `--help` lists every command with its one-line help,
a real process logs JSON lines to a pipe, and a reader that leaves early is no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from glimpse_agent.cli import COMMANDS

# The user's view of the commands (DESIGN.md); each must be listed by --help.
EXPECTED = {
    "sandbox",
    "run",
    "once",
    "plan",
    "status",
    "simulate",
    "check",
    "register",
    "verify",
}


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glimpse_agent", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


def test_help_lists_every_command_with_one_line_help() -> None:
    """`glimpse-agent --help` exits 0 and shows each command next to its one-line help."""
    proc = cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert set(COMMANDS) >= EXPECTED
    listed = {}
    for line in proc.stdout.splitlines():
        words = line.split(maxsplit=1)
        if len(words) == 2 and words[0] in COMMANDS:
            listed[words[0]] = words[1].strip()
    assert set(listed) == set(COMMANDS), proc.stdout
    for name, help_text in COMMANDS.items():
        assert listed[name] == help_text, (name, listed[name])
        assert "\n" not in help_text and len(help_text) <= 100


def test_installed_console_script_shows_help() -> None:
    """The `glimpse-agent` script installed next to the interpreter answers --help."""
    script = Path(sys.executable).with_name("glimpse-agent")
    if not script.exists():
        pytest.skip("package not installed as a console script in this interpreter's bin")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "check" in proc.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_its_own_help(command: str) -> None:
    """`glimpse-agent COMMAND --help` exits 0 and describes the command."""
    proc = cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"glimpse-agent {command}" in proc.stdout
    assert " ".join(COMMANDS[command].split()[:3]) in " ".join(proc.stdout.split())


def test_no_command_prints_help_and_exits_2() -> None:
    """Bare `glimpse-agent` is a usage error: help on stdout, exit code 2."""
    proc = cli()
    assert proc.returncode == 2 and "commands:" in proc.stdout


def test_unknown_command_is_a_usage_error() -> None:
    """A mistyped command exits 2 with argparse's message, not a traceback."""
    proc = cli("chek")
    assert proc.returncode == 2
    assert "invalid choice: 'chek'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_real_check_logs_json_to_a_pipe(tmp_path: Path) -> None:
    """`check` run as a process with stderr piped writes only JSON log lines besides its
    report, and the report goes to stdout."""
    (tmp_path / "persona.toml").write_text(
        'name = "tester"\ntimezone = "UTC"\nactive_hours = ["08:00", "22:00"]\n'
        'posts_per_day = 1\ntopics = ["x"]\n',
        encoding="utf-8",
    )
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        'persona = "persona.toml"\n[glimpse]\nbase_url = "http://127.0.0.1:9/api/v1"\n'
        'api_key = "glm_CANARYpipe0123456789"\n[images]\norder = ["local"]\n',
        encoding="utf-8",
    )
    proc = cli("--log-level", "debug", "check", "-c", str(cfg))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("1 of ")
    log_lines = proc.stderr.splitlines()
    assert log_lines, "debug logging should say something"
    for line in log_lines:
        json.loads(line)
    assert "CANARY" not in proc.stdout + proc.stderr


def test_output_piped_into_a_reader_that_leaves_early_is_no_traceback(tmp_path: Path) -> None:
    """`glimpse-agent ... | head -1`: the command stops quietly with 141, as a shell tool does."""
    workflow = {
        str(n): {"class_type": "CLIPTextEncode", "inputs": {"text": "x" * 200, "seed": n}}
        for n in range(5000)
    }
    path = tmp_path / "workflow_api.json"
    path.write_text(json.dumps(workflow))
    proc = subprocess.Popen(
        [sys.executable, "-m", "glimpse_agent", "viewcomfy-params", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader leaves while the command still has pages to write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert first.strip()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
