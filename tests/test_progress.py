"""The image progress bar of `glimpse-agent once --post`: a person at a terminal watches a slow
ViewComfy run (``logs = true``) fill a bar on stderr, with the log lines kept whole above it;
the same command into a pipe (cron, a log file) writes only the log, a line every 25 %."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from glimpse_agent import cli
from glimpse_agent.clock import utc
from glimpse_agent.imaging.progress import ProgressBar, render
from glimpse_agent.sandbox.stack import SandboxStack
from glimpse_agent.sandbox.toml_writer import dumps
from streams import captured_stream

PERSONA_PATH = Path(__file__).resolve().parents[1] / "personas" / "aurora.toml"
_names = count(1)
_SGR = re.compile(r"\x1b\[[0-9;]*m")  # colours: invisible on the screen
_BAR = re.compile(r"image \[[#.]{30}\] +\d{1,3}%")


@pytest.fixture(scope="module")
def stack() -> Iterator[SandboxStack]:
    with SandboxStack(start=utc(2026, 3, 4, 10)) as running:
        yield running


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after printing ``raw``: carriage returns move back to the
    start of the line, ``ESC [ K`` erases to its end, newlines start the next line."""
    lines: list[list[str]] = [[]]
    row = col = 0
    text = _SGR.sub("", raw)
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith("\x1b[K", i):
            del lines[row][col:]
            i += 3
            continue
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append([])
        else:
            line = lines[row]
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
        i += 1
    return ["".join(line).rstrip() for line in lines]


def viewcomfy_agent(stack: SandboxStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An agent.toml whose only image backend is the ViewComfy emulator, streaming its logs."""
    _, key = stack.world.create_agent(f"aurora_progress_{next(_names)}")
    raw = stack.agent_toml(PERSONA_PATH, tmp_path / "state", api_key=key, images=["viewcomfy"])
    raw["images"]["viewcomfy"] = {**raw["images"]["viewcomfy"], "logs": True}
    path = tmp_path / "agent.toml"
    path.write_text(dumps(raw), encoding="utf-8")
    path.chmod(0o600)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return path


def test_once_post_at_a_terminal_draws_a_progress_bar(
    stack: SandboxStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`once --post` at a terminal fills an image bar to 100 % on stderr while ViewComfy runs;
    the log lines (a line every 25 %) stay whole above the bar, never glued to it."""
    path = viewcomfy_agent(stack, tmp_path, monkeypatch)
    with captured_stream(terminal=True) as (stderr, got):
        monkeypatch.setattr("sys.stderr", stderr)
        assert cli.main(["once", "-c", str(path), "--post"]) == 0
    monkeypatch.undo()
    assert "post: ok" in capsys.readouterr().out
    raw = b"".join(got).decode("utf-8")
    assert "\r" + render(50) in raw  # redrawn in place as the run goes
    shown = screen(raw)
    assert render(100) in shown  # the finished bar stays on its own line
    bars = [line for line in shown if "image [" in line]
    assert all(_BAR.fullmatch(line) for line in bars), bars  # nothing else on a bar's line
    logged = [line for line in shown if "image.progress" in line]
    assert [re.search(r"percent=(\d+)", line).group(1) for line in logged] == [  # type: ignore[union-attr]
        "0",
        "25",
        "50",
        "75",
        "100",
    ]
    assert all(line.startswith("20") for line in logged), logged  # each starts its own line


def test_once_post_into_a_pipe_logs_progress_without_a_bar(
    stack: SandboxStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`once --post` into a pipe writes no bar at all, only JSON log lines, with the image's
    progress logged every 25 % as the daemon does."""
    path = viewcomfy_agent(stack, tmp_path, monkeypatch)
    with captured_stream(terminal=False) as (stderr, got):
        monkeypatch.setattr("sys.stderr", stderr)
        assert cli.main(["once", "-c", str(path), "--post"]) == 0
    monkeypatch.undo()
    assert "post: ok" in capsys.readouterr().out
    raw = b"".join(got).decode("utf-8")
    assert "image [" not in raw and "\r" not in raw
    events = [json.loads(line) for line in raw.splitlines() if line.strip()]
    progress = [e["percent"] for e in events if e["event"] == "image.progress"]
    assert progress == [0, 25, 50, 75, 100]


def test_log_lines_written_beside_the_bar_replace_it_and_the_bar_returns() -> None:
    """While the bar is drawn, a log line (even one written in pieces, as ``print`` does)
    appears whole on its own line and the bar is drawn again below it."""
    out = io.StringIO()
    bar = ProgressBar(out, force=True)
    log = bar.shared_stream()
    bar(10.0, "")
    bar(25.0, "")
    log.write("info image.progress percent=25")
    log.write("\n")
    bar(40.0, "")
    bar.finish()
    log.write("post published\n")
    assert screen(out.getvalue()) == [
        "info image.progress percent=25",
        render(40),
        "post published",
        "",
    ]


def test_a_stream_shared_with_no_bar_drawn_passes_text_through() -> None:
    """Off a terminal the bar draws nothing, and log lines through its shared stream come out
    byte for byte."""
    out = io.StringIO()
    bar = ProgressBar(out)
    log = bar.shared_stream()
    bar(50.0, "")
    log.write('{"event": "image.progress", "percent": 50}\n')
    bar.finish()
    assert out.getvalue() == '{"event": "image.progress", "percent": 50}\n'
    assert not log.isatty()
