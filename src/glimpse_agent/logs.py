"""structlog set-up: JSON lines when stderr is not a terminal, readable console otherwise;
every event passes through the redaction processor last, so no secret reaches the output.

Loggers are lazy: ``get_logger`` (also at module level, as the ledger's are) resolves the
configuration when an event is emitted, not when the logger is made, so an event logged by
code imported before ``configure_logging`` still goes where and how the CLI said.
Identical warnings (same event, same fields) are rate-limited: the first is written, the
repeats are counted, and the next one after ``REPEAT_WINDOW_SECONDS`` carries the count.

Every line carries the process's context (``bind_process_context``: the persona, once the
config is read) unless the logger bound its own value, and so do the libraries' lines. Under
systemd, when ``$JOURNAL_STREAM`` names our stderr, every line starts with its syslog priority
(``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>`` debug; sd-daemon(3)), which journald
strips and keeps as the entry's priority, so ``journalctl -p warning`` works.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog

from glimpse_agent.redaction import redact

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

#: A repeated identical warning is written at most once per this many seconds.
REPEAT_WINDOW_SECONDS = 600.0
_LIMITED_LEVELS = frozenset({"warning", "error", "critical"})
#: Fields that differ between otherwise identical events (and "_"-prefixed ones: the stdlib
#: record that a library's warning carries through the chain).
_NOT_IDENTITY = frozenset({"timestamp"})
#: syslog priorities (sd-daemon(3)) of our level names.
PRIORITIES = {
    "debug": 7,
    "info": 6,
    "notice": 5,
    "warning": 4,
    "warn": 4,
    "error": 3,
    "exception": 3,
    "critical": 2,
    "fatal": 2,
}

# The process's logging set-up, as ``configure_logging`` left it. A logging configuration is
# process-wide by nature (structlog's and the stdlib's are too); per-persona context belongs in
# bound loggers, which always win over this.
_process_context: dict[str, Any] = {}
_settings: dict[str, bool] = {"json": False}


def bind_process_context(**fields: Any) -> None:
    """Fields every later line carries unless its logger bound its own (``persona`` once the
    config is read). ``None`` removes a field."""
    for key, value in fields.items():
        if value is None:
            _process_context.pop(key, None)
        else:
            _process_context[key] = value


def add_process_context(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the process context, under whatever the event already has."""
    for key, value in _process_context.items():
        event_dict.setdefault(key, value)
    return event_dict


def json_lines_enabled() -> bool:
    """Whether the last ``configure_logging`` chose JSON lines (the fatal error follows it)."""
    return _settings["json"]


def journal_stream_matches(stream: TextIO) -> bool:
    """True if ``$JOURNAL_STREAM`` ("device:inode") names ``stream``'s file: our stderr is
    connected to journald, not redirected elsewhere by whoever started us (sd-daemon(3))."""
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, ValueError, OSError):  # no real file behind the stream
        return False
    return st.st_dev == int(device) and st.st_ino == int(inode)


class PriorityPrefix:
    """Wraps a renderer: each rendered line starts with ``<N>``, the syslog priority of its
    level, which journald turns into the entry's PRIORITY."""

    def __init__(self, renderer: Callable[..., Any]) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        level = str(event_dict.get("level", method_name)).lower()
        rendered = self.renderer(logger, method_name, event_dict)
        return f"<{PRIORITIES.get(level, 6)}>{rendered}"


def redact_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets by key name and by value in every field."""
    return {k: redact(v, name=k) for k, v in event_dict.items()}


class RepeatLimiter:
    """structlog processor: the first of identical warnings passes; the repeats within
    ``every_seconds`` are dropped and counted; the next one after that passes with
    ``repeats_suppressed`` (how many were dropped) and ``repeats_window_s``. A disk that stays
    full thus says so once, then once every ten minutes with a count, not every 30 s."""

    def __init__(
        self,
        every_seconds: float = REPEAT_WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 512,
    ) -> None:
        self.every = every_seconds
        self.clock = clock
        self.max_keys = max_keys
        self._lock = threading.Lock()
        # identity -> [when last written, repeats dropped since]
        self._seen: collections.OrderedDict[str, list[float]] = collections.OrderedDict()

    def __call__(
        self, _: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        level = str(event_dict.get("level", method_name)).lower()
        if level not in _LIMITED_LEVELS:
            return event_dict
        fields = [
            (k, repr(v))
            for k, v in event_dict.items()
            if k not in _NOT_IDENTITY and not k.startswith("_")
        ]
        identity = repr(sorted(fields, key=lambda kv: kv[0]))
        now = self.clock()
        with self._lock:
            entry = self._seen.get(identity)
            if entry is None:
                self._seen[identity] = [now, 0]
                while len(self._seen) > self.max_keys:
                    self._seen.popitem(last=False)
                return event_dict
            self._seen.move_to_end(identity)
            if now - entry[0] < self.every:
                entry[1] += 1
                raise structlog.DropEvent
            suppressed = int(entry[1])
            entry[0], entry[1] = now, 0
        if suppressed:
            event_dict["repeats_suppressed"] = suppressed
            event_dict["repeats_window_s"] = self.every
        return event_dict


def configure_logging(
    level: str = "info",
    *,
    json: bool | None = None,
    stream: TextIO | None = None,
    repeat_window_seconds: float = REPEAT_WINDOW_SECONDS,
) -> None:
    """Configure structlog once for the process. ``json=None`` means: JSON unless a TTY."""
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = not _isatty(out)
    _settings["json"] = json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=_isatty(out))
    )
    if journal_stream_matches(out):
        renderer = PriorityPrefix(renderer)
    limiter = RepeatLimiter(repeat_window_seconds)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_process_context,
            structlog.processors.add_log_level,
            limiter,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Libraries (httpx, uvicorn, apscheduler, huggingface_hub) log through stdlib logging: keep
    # them quiet and render anything they do say as ours are (JSON lines, redacted), onto the
    # same stream. Our handler replaces the one an earlier call installed (a test, or a command
    # run twice in-process).
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                add_process_context,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_event,
                renderer,
            ],
        )
    )
    handler.addFilter(_RepeatFilter(limiter))
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for noisy in (
        "httpx",
        "httpcore",
        "uvicorn",
        "uvicorn.access",
        "uvicorn.error",
        "openai",
        "huggingface_hub",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for any_handler in root.handlers:
        if not any(isinstance(f, _RedactingFilter) for f in any_handler.filters):
            any_handler.addFilter(_RedactingFilter())


_OURS = "_glimpse_agent_handler"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class _RepeatFilter(logging.Filter):
    """The same limit for library warnings (a formatter cannot drop a record; a filter can)."""

    def __init__(self, limiter: RepeatLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        fields = {"logger": record.name, "event": record.getMessage()}
        try:
            out = self.limiter(None, record.levelname.lower(), fields)
        except structlog.DropEvent:
            return False
        if "repeats_suppressed" in out:
            record.msg = f"{record.getMessage()} ({out['repeats_suppressed']} repeats suppressed)"
            record.args = None
        return True


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def get_logger(name: str = "glimpse_agent", **bound: Any) -> Any:
    """A structlog logger with ``bound`` context (persona, job, action). Lazy: it follows the
    configuration in force when it logs, so a module-level logger made at import time still
    obeys the CLI's ``configure_logging``."""
    return structlog.get_logger(name, **bound)
