"""What the Langflow emulator knows and remembers: its flows (template, outputs, model,
failure switches), every run it was sent, uploads, per-session chat memory, and how a flow turns
the tweaks it is sent into its text (``render``). HTTP lives in ``langflow_app``."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from glimpse_agent.sandbox.release import Release

INPUT_TYPES = {"chat", "text", "any"}
OUTPUT_TYPES = {"chat", "text", "any", "debug"}
PROTECTED = {"code"}
_VAR = re.compile(r"\{(\w+)\}")
UUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
GRAPH_ERROR = "Error running graph: Error building Component OpenAI: Connection error."

#: A flow's model: (the Prompt's variables, a per-request key, what it answered this session
#: before, oldest first) -> the flow's text.
FlowModel = Callable[[dict[str, str], str, Sequence[str]], str]
MEMORY = 20  # answers remembered per session, as a Chat Memory component would keep them


@dataclass
class EmulatedFlow:
    """One flow: ChatInput -> Prompt(template) -> (model) -> Chat Output or Text Output."""

    id: str
    endpoint_name: str | None = None
    name: str | None = None  # None: named after the endpoint name, as the list shows it
    listed: bool = True  # False: another user's flow, runnable by name but not in our list
    output: Literal["chat", "text"] = "chat"
    template: str = "A {voice} look at {topic}. {hashtags}"
    defaults: dict[str, str] = field(
        default_factory=lambda: {"voice": "plain", "topic": "something", "hashtags": ""}
    )
    prompt_node: str = "Prompt-capPr"
    input_node: str = "ChatInput-b6UCc"
    tokens: bool = True  # the model streams: token events between the add_message events
    fail: bool = False  # a component fails: 500, or error events when streaming
    reply: str | None = None  # fixed output instead of the rendered template
    model: FlowModel | None = None  # writes the output from the variables instead of the template

    @property
    def output_node(self) -> str:
        return "ChatOutput-Xy12z" if self.output == "chat" else "TextOutput-Ab34c"


@dataclass
class RecordedRun:
    """What one request carried and what the emulator made of it."""

    flow: str
    hosted: bool
    stream: bool
    headers: dict[str, str]
    body: Any
    applied: dict[str, Any] = field(default_factory=dict)
    dropped: bool = False
    status: int = 200
    text: str | None = None


class LangflowState:
    """Flows, switches and a record of requests, shared by a test and the server thread."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        hosted_id: str | None = None,
        hosted_token: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.hosted_id = hosted_id
        self.hosted_token = hosted_token
        self.message_shape: Literal["string", "object"] = "string"
        self.stream_prefix = False  # a proxy adding "data: " before each event
        self.stream_fault: Literal["error", "cut"] | None = None
        self.unavailable_retry_after: float | None = None  # set: 503 + Retry-After
        self.delay = 0.0
        self.flows: list[EmulatedFlow] = []
        self.runs: list[RecordedRun] = []
        self.uploads: list[dict[str, Any]] = []
        self.upload_status: int | None = None  # set: every upload is refused with it
        self.listings: list[RecordedRun] = []  # every GET /flows/ (body: its query)
        self.listing_status: int | None = None  # set: GET /flows/ answers it
        self.paginate: int | None = None  # set: GET /flows/ answers pages of this size
        self.memory: dict[str, list[str]] = {}  # session id -> the flow's last answers
        self._lock = threading.Lock()
        self._release = Release()

    def add_flow(self, *, flow_id: str | None = None, **options: Any) -> EmulatedFlow:
        flow = EmulatedFlow(id=flow_id or str(uuid.uuid4()), **options)
        with self._lock:
            self.flows.append(flow)
        return flow

    def find(self, ident: str) -> EmulatedFlow | None:
        with self._lock:
            return next((f for f in self.flows if ident in (f.id, f.endpoint_name)), None)

    def record(self, run: RecordedRun) -> RecordedRun:
        with self._lock:
            self.runs.append(run)
        return run

    def answer(self, flow: EmulatedFlow, run: RecordedRun) -> str:
        """Render ``flow`` for ``run`` with its session's memory, and remember the answer."""
        session_id = run.applied.get("session_id") or flow.id
        key = f"{session_id}\n{run.applied.get('input_value') or ''}"
        with self._lock:
            history = list(self.memory.get(session_id, ()))
        text = render(flow, run.applied.get("tweaks") or {}, key, history)
        with self._lock:
            self.memory[session_id] = [*history, text][-MEMORY:]
        return text

    def release(self) -> None:
        """End every current and future delay, so the server can stop at once."""
        self._release.set()

    async def wait(self) -> None:
        """Sleep ``delay`` seconds, waking early once released."""
        await self._release.sleep(self.delay)


def render(
    flow: EmulatedFlow, tweaks: dict[str, Any], key: str = "", history: Sequence[str] = ()
) -> str:
    """The flow's text: its Prompt template filled from tweaks (by node id, display name or
    a top-level field), else from defaults; or what its ``model`` writes from those values
    (``key`` tells one request from another; ``history``: the session's earlier answers)."""
    if flow.reply is not None:
        return flow.reply
    node = {}
    for name in (flow.prompt_node, "Prompt"):
        if isinstance(tweaks.get(name), dict):
            node.update(tweaks[name])

    def lookup(name: str) -> str:
        found = node.get(name, tweaks.get(name) if not isinstance(tweaks.get(name), dict) else None)
        return str(found if found is not None else flow.defaults.get(name, ""))

    if flow.model is not None:
        names = {*_VAR.findall(flow.template), *flow.defaults, *node}
        return flow.model({name: lookup(name) for name in names}, key, history)
    return " ".join(_VAR.sub(lambda m: lookup(m.group(1)), flow.template).split())
