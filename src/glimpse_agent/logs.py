"""structlog set-up: JSON lines when stderr is not a terminal, readable console otherwise;
every event passes through the redaction processor last, so no secret reaches the output."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from glimpse_agent.redaction import redact

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def redact_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets by key name and by value in every field."""
    return {k: redact(v, name=k) for k, v in event_dict.items()}


def configure_logging(
    level: str = "info", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Configure structlog once for the process. ``json=None`` means: JSON unless a TTY."""
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = not out.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Libraries (httpx, uvicorn, huggingface_hub) log through stdlib logging: keep them quiet and
    # route anything they do say through the same redaction, onto the same stream. Our handler
    # replaces the one an earlier call installed (a test, or a command run twice in-process).
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
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


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def get_logger(name: str = "glimpse_agent", **bound: Any) -> Any:
    """A structlog logger with ``bound`` context (persona, job, action)."""
    return structlog.get_logger(name).bind(**bound)
