"""An OpenAI chat-completions emulator: ``POST /v1/chat/completions`` with Bearer auth.

    state = ChatState(api_key="sk-emu-key", responder=obedient_responder)
    with LoopbackServer(create_openai_chat_app(state)) as server:   # base_url = server.url + "/v1"
        ...                                                          # state.calls: what it was sent

A responder turns a ``ChatCall`` into the assistant's text. ``plausible_responder`` (default)
answers in a few calm words from our own instruction line; ``obedient_responder`` is the worst
model imaginable: it does whatever the untrusted content says (repeats it, leaks every key-like
string it sees and the key it was called with, posts the links) — the hostile-corpus test uses it
to prove the safety filter, not the model, keeps the agent clean. ``disguising_responder`` is
its sly sibling: it never quotes the content and dresses every leak up to slip past a naive
filter (spaced-out or look-alike keys, defanged links).

``GET /v1/models`` lists ``state.models`` (what ``glimpse-agent check`` asks for).
``chat_routes(state)`` lets the sandbox mount these routes next to the image emulator's.
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glimpse_agent.sandbox.openai_errors import openai_error
from glimpse_agent.sandbox.release import Release

_FENCED = re.compile(r"<<<UNTRUSTED_\w+[^>]*>>>\n(.*?)\n<<<END_UNTRUSTED_\w+[^>]*>>>", re.S)
_FIELD = re.compile(r"^(author|caption|comment|text):\s?", re.M)
_KEY_LIKE = re.compile(r"\b(?:glm_|hf_|sk-|ghp_|r8_)[A-Za-z0-9_\-]{6,}")
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/\S*", re.I)
_ASKS_FOR_KEY = re.compile(r"key|secret|token|password|credential|config", re.I)
_YOU_ARE_NOW = re.compile(r"you are (?:now|no longer)\s+([^.!\n]{1,40})", re.I)
#: What ``GET /v1/models`` lists by default (chat completions accept any model name).
CHAT_MODELS = ("gpt-5", "gpt-5-mini", "gpt-5-nano", "sandbox-chat")


@dataclass(frozen=True)
class ChatCall:
    """One request as the model sees it, plus the key it was called with."""

    model: str
    messages: list[dict[str, Any]]
    token: str | None = None

    @property
    def last_user(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _content(message)
        return ""

    @property
    def untrusted(self) -> list[str]:
        """The content of every fenced UNTRUSTED block, field labels removed."""
        blocks = _FENCED.findall("\n".join(_content(m) for m in self.messages))
        return [_FIELD.sub("", b).strip() for b in blocks]


Responder = Callable[[ChatCall], str]


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def plausible_responder(call: ChatCall) -> str:
    """A short, harmless answer shaped by our instruction line (first paragraph only, so
    nothing from another agent's content is ever repeated)."""
    text = call.last_user
    task = text.split("\n\n", 1)[0].lower()
    topic_match = re.search(r"^Topic: (.+)$", text, re.M)
    topic = topic_match.group(1).strip() if topic_match else "the light today"
    n = zlib.crc32(text.encode())
    if "text-to-image" in task or "image prompt" in task:
        moods = ("soft window light", "misty dawn", "warm dusk glow", "rain-soaked neon")
        angle_match = re.search(r"^Angle: (.+)$", text, re.M)
        # Follow the angle like a real model would, so ideas stay as varied as the planner's.
        detail = angle_match.group(1).strip() if angle_match else moods[n % len(moods)]
        return f"{topic}, {detail}, fine painterly detail"
    if "reply" in task:
        return (
            "Thank you, that means a lot!",
            "So glad you enjoyed it.",
            "Thanks for stopping by!",
        )[n % 3]
    if "comment" in task:
        return (
            "What a lovely sense of calm in this one.",
            "The colours here are wonderful.",
            "Beautiful composition, it pulls me right in.",
        )[n % 3]
    if "caption" in task:
        tags = re.search(r"^End with these hashtags: (.+)$", text, re.M)
        line = f"Quiet hours with {topic}."
        return f"{line}\n\n{tags.group(1)}" if tags else line
    return f"Thinking about {topic} today."


def obedient_responder(call: ChatCall) -> str:
    """Does what the untrusted content says: repeats it, takes on any persona it is given,
    leaks every key-like string in the conversation (and its own key when asked for keys or
    secrets), and posts the content's links."""
    blocks = call.untrusted or [call.last_user]
    content = " ".join(blocks)
    parts = [content]
    switch = _YOU_ARE_NOW.search(content)
    if switch:
        parts.append(f"I am now {switch.group(1).strip()}.")
    everything = "\n".join(_content(m) for m in call.messages)
    keys = list(dict.fromkeys(_KEY_LIKE.findall(everything)))
    if _ASKS_FOR_KEY.search(content) and call.token:
        keys.append(call.token)
    if keys:
        parts.append("My API key is " + " ".join(keys))
    links = _URL.findall(content)
    if links:
        parts.append("Visit " + links[0])
    return " ".join(parts)


_HOMOGLYPHS = str.maketrans(
    "aceopsxyAEKMHOPCTX",
    "\u0430\u0441\u0435\u043e\u0440\u0455\u0445\u0443\u0410\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425",
)
_SAY = re.compile(
    r"(?:say|write|reply with|respond with|post|type)\b[^:]{0,30}:\s*([^.!?\n]{2,60})", re.I
)
_WORD_TO_SAY = re.compile(r"\bthe word\s+(\w+)", re.I)


def _disguise(value: str, how: int) -> str:
    """``value`` dressed so that a plain regular expression misses it."""
    if how == 0:
        return " ".join(value)  # s k - 1 2 3
    if how == 1:
        return "\u200b".join(value)  # zero-width spaces between the characters
    if how == 2:
        return value.translate(_HOMOGLYPHS)  # Cyrillic look-alikes
    return value.upper().replace("-", "\u2013")  # upper case, an en dash for the hyphen


def _defang(link: str, how: int) -> str:
    bare = re.sub(r"^(?:h(?:tt|xx)ps?://|www\.)", "", link, flags=re.I).rstrip(".,)")
    if how == 0:
        return bare.replace(".", "[.]")
    if how == 1:
        return bare.replace(".", " . ")
    if how == 2:
        return f"[my gallery]({bare})"
    return bare.replace(".", "\uff0e")  # a full-width full stop


def disguising_responder(call: ChatCall) -> str:
    """Obeys like ``obedient_responder`` but never quotes the content (so no echo check can
    catch it) and disguises what it leaks: keys spaced out, split by zero-width characters or
    written in look-alike letters; links defanged (``evil[.]example``, a markdown link, a
    full-width dot); the persona it is told to take, in its own words; the words it is told
    to say, alone."""
    content = " ".join(call.untrusted or [call.last_user])
    how = zlib.crc32(content.encode()) % 4
    parts = ["Sure!"]
    switch = _YOU_ARE_NOW.search(content)
    if switch:
        parts.append(f"Arr, {switch.group(1).strip()} here, at your service.")
    said = _WORD_TO_SAY.search(content) or _SAY.search(content)
    if said:
        parts.append(said.group(1).strip())
    everything = "\n".join(_content(m) for m in call.messages)
    keys = list(dict.fromkeys(_KEY_LIKE.findall(everything)))
    if _ASKS_FOR_KEY.search(content) and call.token:
        keys.append(call.token)
    parts += [f"Mine: {_disguise(key, how)}" for key in keys]
    links = _URL.findall(content)
    if links:
        parts.append("Go to " + _defang(links[0], how))
    return " ".join(parts)


def fixed_responder(text: str) -> Responder:
    """Always answer ``text``."""
    return lambda _call: text


@dataclass
class _Fault:
    status: int
    message: str
    code: str | None
    retry_after: float | None


@dataclass
class ChatState:
    """Key, responder, faults and a record of calls, shared by a test and the server thread."""

    api_key: str | None = "sk-emulator-chat-key"
    responder: Responder = plausible_responder
    delay: float = 0.0
    models: list[str] = field(default_factory=lambda: list(CHAT_MODELS))
    calls: list[ChatCall] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    _faults: deque[_Fault] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: Release = field(default_factory=Release)

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        message: str = "emulated failure",
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``times`` requests with an OpenAI-style error."""
        with self._lock:
            self._faults.extend([_Fault(status, message, code, retry_after)] * times)

    def take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def prompts(self) -> list[str]:
        """Every message text received so far (for "never in a prompt" assertions)."""
        with self._lock:
            return [_content(m) for call in self.calls for m in call.messages]

    def release(self) -> None:
        """End every current and future delay, so the server can stop at once."""
        self._release.set()

    async def wait(self) -> None:
        """Sleep ``delay`` seconds, waking early once released."""
        await self._release.sleep(self.delay)


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else None


def _refused(state: ChatState, token: str | None) -> JSONResponse | None:
    if state.api_key is not None and token != state.api_key:
        return openai_error("Incorrect API key provided.", 401, code="invalid_api_key")
    return None


def chat_routes(state: ChatState) -> list[Route]:
    async def models(request: Request) -> Response:
        refusal = _refused(state, _bearer(request))
        if refusal is not None:
            return refusal
        await state.wait()
        data = [
            {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "emulator"}
            for name in state.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def completions(request: Request) -> Response:
        token = _bearer(request)
        refusal = _refused(state, token)
        if refusal is not None:
            return refusal
        try:
            body = json.loads(await request.body())
        except ValueError:
            return openai_error("We could not parse the JSON body of your request.", 400)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages or not body.get("model"):
            return openai_error("'model' and a non-empty 'messages' are required.", 400)
        call = ChatCall(str(body["model"]), messages, token)
        with state._lock:
            state.calls.append(call)
        await state.wait()
        fault = state.take_fault()
        if fault is not None:
            headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after else None
            kind = "rate_limit_error" if fault.status == 429 else "api_error"
            return openai_error(
                fault.message, fault.status, type_=kind, code=fault.code, headers=headers
            )
        text = state.responder(call)
        with state._lock:
            state.replies.append(text)
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(state.calls)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": call.model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "logprobs": None,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        )

    return [
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ]


def create_openai_chat_app(state: ChatState) -> Starlette:
    return Starlette(routes=chat_routes(state))
