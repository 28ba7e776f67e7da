"""Reading what a Langflow server says: the text of a run, readable error details, and the
streaming framing (blank-line separated JSON events — not SSE, though a proxy may add ``data:``).

Pure functions and two small stateful readers; the requests are sent from ``__init__`` and
``flows``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from glimpse_agent.errors import BadResponse, Unavailable
from glimpse_agent.redaction import redact_text

SERVICE = "langflow"
_STATUS_PREFIX = re.compile(r"^\s*\d{3}\s*:\s*")
_DETAIL_KEYS = ("message", "detail", "text", "error", "msg", "description")


# --------------------------------------------------------------------------- text of a run


def _at(obj: Any, *keys: str | int) -> Any:
    for key in keys:
        if isinstance(key, int):
            if not isinstance(obj, list) or len(obj) <= key:
                return None
        elif not isinstance(obj, dict):
            return None
        obj = obj[key] if isinstance(key, int) else obj.get(key)
    return obj


def _message_text(value: Any) -> Any:
    """``outputs.*.message`` is a string on current servers and ``{"text": ...}`` on older or
    hosted ones."""
    return value.get("text") if isinstance(value, dict) else value


def _artifact_raw(result: dict[str, Any]) -> Any:
    artifacts = result.get("artifacts")
    if not isinstance(artifacts, dict):
        return None
    for value in artifacts.values():
        raw = value.get("raw") if isinstance(value, dict) else None
        if isinstance(raw, str) and raw.strip():
            return raw
    return None


# In the order a robust client tries them (see protocols/langflow.md).
_CANDIDATES: tuple[Callable[[dict[str, Any]], Any], ...] = (
    lambda r: _at(r, "results", "message", "text"),
    lambda r: _at(r, "results", "message", "data", "text"),
    lambda r: _at(r, "results", "text", "text"),
    lambda r: _message_text(_at(r, "outputs", "message", "message")),
    lambda r: _message_text(_at(r, "outputs", "text", "message")),
    lambda r: _at(r, "artifacts", "message"),
    _artifact_raw,
    lambda r: _message_text(_at(r, "messages", 0, "message")),
)


def _result_data(body: Any) -> list[dict[str, Any]]:
    """Every ResultData of a run body, Chat Output components first."""
    found: list[dict[str, Any]] = []
    for run in _at(body, "outputs") or []:
        for result in _at(run, "outputs") or []:
            if isinstance(result, dict):
                found.append(result)
    return sorted(found, key=lambda r: not str(r.get("component_id", "")).startswith("ChatOutput"))


def extract_text(body: Any) -> str | None:
    """The text a flow produced, or None ("no text output"). First non-empty string wins."""
    for result in _result_data(body):
        for candidate in _CANDIDATES:
            value = candidate(result)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


# --------------------------------------------------------------------------- error details


def render_detail(body: Any, *, limit: int = 300) -> str:
    """A readable, redacted one-liner from an error body: FastAPI's ``detail`` as a string, a
    JSON-encoded string, a list of validation errors or an object; or a stream's error."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, dict) and "detail" in body:
        body = body["detail"]
    # Masked before it is shortened: a cut through a secret would leave its head unmasked.
    text = redact_text(" ".join(_render(body, depth=0).split()))
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def response_detail(response: httpx.Response) -> str:
    """``render_detail`` of a read error response: of its JSON, else of its text."""
    try:
        return render_detail(response.json())
    except ValueError:
        return render_detail(response.text)


def _render(value: Any, *, depth: int) -> str:
    if depth > 4:
        return ""
    if isinstance(value, str):
        stripped = _STATUS_PREFIX.sub("", value).strip()
        if stripped[:1] in '{["':
            try:
                return _render(json.loads(stripped), depth=depth + 1)
            except ValueError:
                pass
        return stripped
    if isinstance(value, list):
        return "; ".join(filter(None, (_render_item(v, depth=depth + 1) for v in value)))
    if isinstance(value, dict):
        for key in _DETAIL_KEYS:
            inner = value.get(key)
            if isinstance(inner, str | list | dict) and inner:
                return _render(inner, depth=depth + 1)
        return json.dumps(value, separators=(",", ":"), default=str)
    return "" if value is None else str(value)


def _render_item(item: Any, *, depth: int) -> str:
    """A FastAPI validation error ``{"loc": [...], "msg": ...}`` as ``body.field: msg``."""
    if isinstance(item, dict) and isinstance(item.get("msg"), str):
        loc = ".".join(str(p) for p in item.get("loc") or [] if p != "body")
        return f"{loc}: {item['msg']}" if loc else item["msg"]
    return _render(item, depth=depth)


# --------------------------------------------------------------------------- streaming


class EventSplitter:
    """Turns streamed text into JSON events. An event is a block of lines ended by a blank
    line; ``data:`` prefixes and SSE ``event:``/``id:``/comment lines are tolerated."""

    def __init__(self) -> None:
        self._partial = ""
        self._block: list[str] = []
        self.unreadable = 0

    def feed(self, chunk: str) -> Iterator[dict[str, Any]]:
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()
        for line in lines:
            yield from self._line(line.rstrip("\r"))

    def close(self) -> Iterator[dict[str, Any]]:
        if self._partial:
            yield from self._line(self._partial)
            self._partial = ""
        yield from self._flush()

    def _line(self, line: str) -> Iterator[dict[str, Any]]:
        if not line.strip():
            yield from self._flush()
            return
        if line.startswith("data:"):
            line = line[5:].lstrip()
        elif line.startswith(("event:", "id:", "retry:", ":")):
            return
        self._block.append(line)
        # One JSON object per line is the common case: yield it without waiting for the blank.
        if len(self._block) == 1:
            event = _parse_event(line)
            if event is not None:
                self._block.clear()
                yield event

    def _flush(self) -> Iterator[dict[str, Any]]:
        if not self._block:
            return
        text, self._block = "\n".join(self._block), []
        event = _parse_event(text)
        if event is None:
            if text.strip() != "[DONE]":
                self.unreadable += 1
            return
        yield event


def _parse_event(text: str) -> dict[str, Any] | None:
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


class StreamAssembler:
    """Follows one run's events to its text. ``end`` carries the full result; ``add_message``
    and ``token`` events are the fallbacks. An ``error`` event with an ``error`` string is the
    final one (raised at once); a stream that stops without ``end`` is a failure."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.last_message: str | None = None
        self.error: str | None = None
        self.result: Any = None
        self.ended = False

    def handle(self, event: dict[str, Any]) -> None:
        name, data = event.get("event"), event.get("data")
        data = data if isinstance(data, dict) else {}
        if name == "token":
            chunk = data.get("chunk")
            if isinstance(chunk, str):
                self.tokens.append(chunk)
        elif name == "add_message":
            if data.get("error") is True or data.get("category") == "error":
                self.error = render_detail(data) or "the flow failed"
            elif data.get("sender") != "User" and isinstance(data.get("text"), str):
                self.last_message = data["text"]
        elif name == "end":
            self.ended = True
            self.result = data.get("result")
        elif name == "error":
            self.error = render_detail(data) or "the flow failed"
            if isinstance(data.get("error"), str):
                raise Unavailable(f"flow failed: {self.error}", service=SERVICE, status=500)

    def text(self) -> str:
        """The run's text once the stream has closed, or our error."""
        if self.ended:
            text = extract_text(self.result) or (self.last_message or "").strip()
            text = text or "".join(self.tokens).strip()
            if not text:
                raise BadResponse("the flow ended with no text output", service=SERVICE)
            return text
        if self.error:
            raise Unavailable(f"flow failed: {self.error}", service=SERVICE, status=500)
        raise Unavailable("the stream stopped before the flow ended", service=SERVICE)
