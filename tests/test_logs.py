"""Logs are JSON lines when stderr is not a terminal, readable text on a terminal, with
secrets masked by key name and by value either way; library (stdlib) logs are masked too."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from glimpse_agent.logs import RepeatLimiter, configure_logging, get_logger
from glimpse_agent.redaction import register_secret


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers = list(root.handlers)
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    structlog.reset_defaults()


SECRET = "zq-UNKNOWNSHAPE-9f8e7d6c5b4a"


def _emit() -> None:
    register_secret(SECRET)
    log = get_logger(persona="aurora", job="post")
    log.info("posted", api_key="plain-but-named-secret", detail=f"sent with {SECRET}")
    log.debug("too detailed")


def test_logs_are_json_lines_when_stderr_is_not_a_terminal(restore_logging: None) -> None:
    """Not a TTY: one JSON object per line with event, level, timestamp and bound context;
    secrets masked by key name and by registered value; below-level events dropped."""
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    _emit()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    event = json.loads(lines[0])
    assert event["event"] == "posted" and event["level"] == "info"
    assert (event["persona"], event["job"]) == ("aurora", "post")
    assert event["timestamp"].endswith("Z")
    assert event["api_key"] == "***"
    assert event["detail"] == "sent with ***"


def test_logs_are_readable_text_on_a_terminal(restore_logging: None) -> None:
    """A TTY gets console lines (not JSON), with the same masking."""
    stream = FakeTerminal()
    configure_logging("debug", stream=stream)
    _emit()
    text = stream.getvalue()
    lines = text.splitlines()
    assert len(lines) == 2 and "posted" in lines[0] and "too detailed" in lines[1]
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])
    assert SECRET not in text and "plain-but-named-secret" not in text


def test_library_logs_are_redacted_too(restore_logging: None) -> None:
    """Warnings from libraries (stdlib logging) pass through the same value redaction."""
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    register_secret(SECRET)
    logging.getLogger("httpx").warning("retrying with key %s", SECRET)
    text = stream.getvalue()
    assert "retrying with key ***" in text and SECRET not in text


def test_identical_warnings_are_written_once_then_summarised(restore_logging: None) -> None:
    """A warning repeated every 30 s (a disk that stays full): the first is written, the
    repeats within the window are not, and the first one after it carries their count.
    A warning with other fields, and info events, are never held back."""
    now = [0.0]
    limiter = RepeatLimiter(600.0, clock=lambda: now[0])
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            limiter,
            structlog.processors.JSONRenderer(),
        ]
    )
    log = get_logger("glimpse_agent.daemon")
    for _ in range(20):  # ten minutes at one every 30 s
        log.warning("heartbeat_file_failed", error="No space left on device")
        log.info("tick")
        now[0] += 30.0
    log.warning("heartbeat_file_failed", error="Read-only file system")
    log.warning("heartbeat_file_failed", error="No space left on device")
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = [e for e in events if e["event"] == "heartbeat_file_failed"]
    assert [e["error"] for e in failed] == [
        "No space left on device",
        "Read-only file system",
        "No space left on device",
    ]
    assert "repeats_suppressed" not in failed[0] and "repeats_suppressed" not in failed[1]
    assert failed[2]["repeats_suppressed"] == 19
    assert sum(e["event"] == "tick" for e in events) == 20


def test_a_logger_made_before_logging_is_configured_follows_it(restore_logging: None) -> None:
    """A module-level logger (the ledger's, made at import) writes where and how the
    configuration made later says: JSON on that stream, redacted — not text on stdout."""
    early = get_logger("glimpse_agent.ledger.storage")
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    register_secret(SECRET)
    early.warning("state_file_unreadable_using_backup", file=f"/state/{SECRET}/ledger.json")
    event = json.loads(stream.getvalue())
    assert event["event"] == "state_file_unreadable_using_backup"
    assert SECRET not in stream.getvalue()
