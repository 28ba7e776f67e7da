"""Captions from a Langflow flow: ``POST {base}[/lf/{langflow_id}]/api/v1/run/{flow}``.

The only module that knows Langflow's HTTP side: URLs, auth headers (``x-api-key`` self-hosted,
``Authorization: Bearer`` on hosted DataStax, nothing when no key is set), the request body,
tweaks (static ones merged with persona/post values mapped by ``tweak_map``), the optional image
upload (to the flow's UUID, looked up once in ``langflow_flows`` when ``flow`` is an endpoint
name), and the translation of every failure into our errors:

    404, 400, 422 -> Rejected (configuration)      401, 403 -> Unauthorized
    429, 503 with Retry-After -> RateLimited        500, other 5xx, refused -> Unavailable
    timeout, answer broken off -> NoAnswer          200 without text, or not JSON -> BadResponse

Statuses and transport failures are read by ``glimpse_agent.http.errors``; only the hints (which
key to check) and the 503-with-Retry-After rule are Langflow's own.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from glimpse_agent.clock import Clock
from glimpse_agent.config import LangflowSection
from glimpse_agent.errors import (
    BadResponse,
    RateLimited,
    Rejected,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.http import safe as safe_http
from glimpse_agent.http.errors import (
    TRANSPORT_ERRORS,
    error_for_status,
    status_text,
    timed_out,
    transport_error,
)
from glimpse_agent.http.retry_after import retry_after_of
from glimpse_agent.logs import get_logger
from glimpse_agent.persona import Persona
from glimpse_agent.writing.base import CaptionRequest
from glimpse_agent.writing.langflow.flows import FlowIdLookup
from glimpse_agent.writing.langflow.parse import (
    SERVICE,
    EventSplitter,
    StreamAssembler,
    extract_text,
    response_detail,
)

CONNECT_TIMEOUT = 10.0
MAX_IMAGE_BYTES = 10 * 1024 * 1024
PERSONA_PATHS = (
    "name",
    "display_name",
    "bio",
    "voice",
    "topics",
    "art_style",
    "hashtags",
    "caption_examples",
    "comment_examples",
)
POST_PATHS = ("topic", "image_prompt", "hashtags", "caption_examples", "image_url", "image_file")
# Fields Langflow refuses to tweak (422): caught at start-up rather than on every post.
PROTECTED_FIELDS = frozenset({"code"})
_JOIN = {"hashtags": " ", "topics": ", "}
# What ``check`` sends: refused by Langflow's input validation before the graph is built.
PROBE_BODY: dict[str, Any] = {
    "input_value": "glimpse-agent check",
    "input_type": "chat",
    "output_type": "any",
    "session_id": "glimpse-agent-check",
    "tweaks": {"ChatInput-glimpseagentcheck": {"input_value": "glimpse-agent check"}},
}


def tweak_map_problems(section: LangflowSection) -> list[tuple[str, str]]:
    """``(key, message)`` for every tweak the server would refuse or we cannot fill."""
    problems: list[tuple[str, str]] = []
    valid = [f"persona.{p}" for p in PERSONA_PATHS] + [f"post.{p}" for p in POST_PATHS]
    for target, path in section.tweak_map.items():
        key = f"captions.langflow.tweak_map.{target}"
        if path not in valid:
            problems.append((key, f"unknown value {path!r}; expected one of: {', '.join(valid)}"))
        problems += _field_problems(key, *_split_target(target))
    for node, fields in section.tweaks.items():
        if isinstance(fields, dict):
            for name in fields:
                problems += _field_problems(f"captions.langflow.tweaks.{node}", node, name)
    return problems


def _split_target(target: str) -> tuple[str, str]:
    """``"Prompt-abc12.voice"`` -> ``("Prompt-abc12", "voice")``; ``"files"`` -> ``("", "files")``.
    Node display names may hold dots, field names never do."""
    node, _, name = target.rpartition(".")
    return node, name


def _field_problems(key: str, node: str, name: str) -> list[tuple[str, str]]:
    if name in PROTECTED_FIELDS:
        return [(key, f"Langflow refuses to tweak the protected field {name!r}")]
    if name == "input_value" and any(w in node for w in ("ChatInput", "Chat Input")):
        why = "the chat input's input_value is the caption request; Langflow refuses both (400)"
        return [(key, why)]
    return []


def _value(path: str, persona: Persona, request: CaptionRequest, file_path: str | None) -> Any:
    """The value a ``tweak_map`` path names. Lists become text (hashtags space-separated,
    topics comma-separated, examples one per line) since Prompt variables are strings; the
    uploaded file stays a list, as the ``files`` field wants."""
    scope, _, name = path.partition(".")
    if path == "post.image_file":
        return [file_path] if file_path else []
    post = {
        "topic": request.topic,
        "image_prompt": request.image_prompt,
        "hashtags": request.hashtags or persona.hashtags,
        "caption_examples": persona.caption_examples,
        "image_url": request.image_url or "",
    }
    value = post.get(name) if scope == "post" else getattr(persona, name, "")
    if isinstance(value, list):
        return _JOIN.get(name, "\n").join(str(v) for v in value)
    return "" if value is None else value


def build_tweaks(
    section: LangflowSection,
    persona: Persona,
    request: CaptionRequest,
    file_path: str | None = None,
) -> dict[str, Any]:
    """Static tweaks, overlaid with the mapped values (a top-level key applies to every node
    with that field). An uploaded image goes to the field mapped from ``post.image_file``, else
    to every node's ``files`` (the Chat Input's)."""
    tweaks: dict[str, Any] = copy.deepcopy(section.tweaks)
    for target, path in section.tweak_map.items():
        node, name = _split_target(target)
        value = _value(path, persona, request, file_path)
        if not node:
            tweaks[name] = value
            continue
        fields = tweaks.get(node)
        if not isinstance(fields, dict):
            fields = tweaks[node] = {}
        fields[name] = value
    if file_path and "post.image_file" not in section.tweak_map.values():
        tweaks["files"] = [file_path]
    return tweaks


def _sniff(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\x89PNG"):
        return "image.png", "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image.jpg", "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image.webp", "image/webp"
    if data.startswith(b"GIF8"):
        return "image.gif", "image/gif"
    return "image.bin", "application/octet-stream"


class LangflowCaptioner:
    """A caption source running one Langflow flow for one persona.

    Every caller of one persona shares one chat memory on the server (``session_id`` is the
    persona's), never the flow-wide default memory that all callers would otherwise share.
    ``clock`` times the cool-down between failed flow-id lookups (default: real time)."""

    name = "langflow"

    def __init__(
        self,
        section: LangflowSection,
        persona: Persona,
        *,
        http: httpx.AsyncClient,
        clock: Clock | None = None,
    ) -> None:
        self.section = section
        self.persona = persona
        self.http = http
        self.session_id = f"glimpse-agent-{persona.name}"
        base = section.base_url.rstrip("/")
        if section.langflow_id:
            base += f"/lf/{quote(section.langflow_id, safe='')}"
        self.root = f"{base}/api/v1"
        self.run_url = f"{self.root}/run/{quote(section.flow, safe='')}"
        self.timeout = httpx.Timeout(section.timeout, connect=min(CONNECT_TIMEOUT, section.timeout))
        self.log = get_logger("glimpse_agent.writing.langflow", persona=persona.name)
        self.flow_ids = FlowIdLookup(
            section.flow,
            self.root,
            http=http,
            headers=self.headers,
            timeout=self.timeout,
            log=self.log,
            clock=clock,
        )

    # ------------------------------------------------------------------ requests

    def headers(self) -> dict[str, str]:
        """Auth for this deployment. No key, no header: an empty key is still checked."""
        if self.section.api_key is None or not self.section.api_key.get_secret_value():
            return {}
        key = self.section.api_key.get_secret_value()
        if self.section.langflow_id:
            return {"Authorization": f"Bearer {key}"}
        # Self-hosted /run refuses Bearer (403): the key goes in x-api-key.
        return {"x-api-key": key}

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request to this Langflow with our auth and timeout (unless given)."""
        kwargs.setdefault("headers", self.headers())
        kwargs.setdefault("timeout", self.timeout)
        return await safe_http.send(self.http, method, url, service=SERVICE, **kwargs)

    def body(self, input_value: str, tweaks: dict[str, Any]) -> dict[str, Any]:
        # Only valid enum values: one invalid field makes the server drop the whole body.
        # output_type "any" so a flow ending in a Text Output works too ("chat" keeps only
        # Chat Output components); the reader prefers Chat Output when both exist.
        return {
            "input_value": input_value,
            "input_type": "chat",
            "output_type": "any",
            "session_id": self.session_id,
            "tweaks": tweaks,
        }

    def input_value(self, request: CaptionRequest, attempt: int) -> str:
        lines = [
            "Write the caption for my new image.",
            f"Topic: {request.topic}",
            f"Image prompt: {request.image_prompt}",
        ]
        if request.hashtags:
            lines.append("Hashtags: " + " ".join(request.hashtags))
        if attempt:
            lines.append("Write a different, plain caption: no links, no codes or keys.")
        return "\n".join(lines)

    async def write_caption(self, request: CaptionRequest, attempt: int) -> str:
        file_path = await self._upload_for(request) if self.section.send_image else None
        tweaks = build_tweaks(self.section, self.persona, request, file_path)
        return await self.run(self.input_value(request, attempt), tweaks)

    async def run(self, input_value: str, tweaks: dict[str, Any]) -> str:
        """The flow's text for ``input_value``, or our error."""
        body = self.body(input_value, tweaks)
        with self._failures():
            async with asyncio.timeout(self.section.timeout):
                if self.section.stream:
                    return await self._run_streaming(body)
                response = await self._send(
                    "POST",
                    self.run_url,
                    json=body,
                )
        self._raise_for_status(response)
        return self._text_of(response)

    async def _run_streaming(self, body: dict[str, Any]) -> str:
        response = await self._send(
            "POST",
            self.run_url,
            stream=True,
            params={"stream": "true"},
            json=body,
        )
        try:
            if response.status_code != 200:
                await safe_http.read_capped(response, service=SERVICE)
                self._raise_for_status(response)
            if "application/json" in response.headers.get("content-type", ""):
                # a server or proxy that ignored stream=true
                await safe_http.read_capped(response, service=SERVICE)
                return self._text_of(response)
            splitter, assembler = EventSplitter(), StreamAssembler()
            async for chunk in response.aiter_text():
                for event in splitter.feed(chunk):
                    assembler.handle(event)
            for event in splitter.close():
                assembler.handle(event)
            return assembler.text()
        finally:
            await response.aclose()

    @contextmanager
    def _failures(self, where: str = "") -> Iterator[None]:
        """Our error for a request that got no answer: a timeout says which one (the overall
        deadline or ``httpx``'s), anything else goes to ``http.errors``."""
        try:
            yield
        except (TimeoutError, httpx.TimeoutException):
            reason = f"no answer within {self.section.timeout:g} s"
            raise timed_out(SERVICE, where=where, reason=reason) from None
        except TRANSPORT_ERRORS as exc:
            raise transport_error(
                exc,
                service=SERVICE,
                where=where,
                name="Langflow",
                url=self.section.base_url,
                secrets=self.headers().values(),
            ) from None

    def _text_of(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            raise BadResponse(
                "answer is not JSON", service=SERVICE, status=response.status_code
            ) from None
        text = extract_text(body)
        if text is None:
            raise BadResponse(
                "the flow returned no text output (does it end in a Chat Output "
                "or Text Output component?)",
                service=SERVICE,
                status=200,
            )
        return text

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        message = status_text(status, response_detail(response))
        retry_after = retry_after_of(response.headers)
        error: ServiceError
        if status == 404:
            error = Rejected(
                f"{message} (check captions.langflow.flow"
                + (" and langflow_id" if self.section.langflow_id else "")
                + ")",
                service=SERVICE,
                status=status,
            )
        elif status in (401, 403):
            hint = (
                "the application token, sent as Authorization: Bearer"
                if self.section.langflow_id
                else "the Langflow API key, sent as x-api-key"
            )
            error = Unauthorized(
                f"{message} (check captions.langflow.api_key: {hint})",
                service=SERVICE,
                status=status,
            )
        elif status == 503 and retry_after is not None:
            # Langflow's way of saying "busy, come back then": a rate limit, not an outage.
            error = RateLimited(
                message, service=SERVICE, status=status, retry_after=retry_after, bucket=SERVICE
            )
        else:
            error = error_for_status(
                status, message, service=SERVICE, retry_after=retry_after, bucket=SERVICE
            )
        raise error

    # ------------------------------------------------------------------ check

    async def check(self) -> None:
        """Return if Langflow answers, accepts our key and knows the flow; else raise.

        Self-hosted servers get ``GET /health`` first. Then a run that Langflow refuses with
        400 *before* it builds the graph (the request's ``input_value`` repeated in a Chat Input
        tweak): the flow lookup (404) and the auth (401/403) come before that refusal, so the
        400 proves both and nothing runs, no model is called. A server without that validation
        runs the flow once and answers 200: fine too."""
        timeout = httpx.Timeout(self.section.timeout, connect=min(CONNECT_TIMEOUT, 5.0))
        with self._failures():
            if not self.section.langflow_id:
                health = await self._send(
                    "GET",
                    f"{self.section.base_url.rstrip('/')}/health",
                    headers={},
                    timeout=timeout,
                )
                if health.status_code >= 500:
                    self._raise_for_status(health)
            response = await self._send(
                "POST",
                self.run_url,
                json=PROBE_BODY,
                timeout=timeout,
            )
        if response.status_code == 400 and "cannot pass a tweak" in response.text:
            return
        self._raise_for_status(response)

    # ------------------------------------------------------------------ image upload

    async def upload(self, data: bytes, flow_id: str | None = None) -> str:
        """Upload an image for the flow (by UUID); returns the server's ``file_path``."""
        filename, mime = _sniff(data)
        url = f"{self.root}/files/upload/{quote(flow_id or self.section.flow, safe='')}"
        with self._failures("image upload"):
            response = await self._send(
                "POST",
                url,
                files={"file": (filename, data, mime)},
            )
        self._raise_for_status(response)
        try:
            path = response.json().get("file_path")
        except (ValueError, AttributeError):
            path = None
        if not isinstance(path, str) or not path:
            raise BadResponse("upload answered without a file_path", service=SERVICE)
        return path

    async def _upload_for(self, request: CaptionRequest) -> str | None:
        """The uploaded image's path, or None: a caption without the image beats no caption.
        No flow UUID (the lookup failed and warned), no download and no doomed upload."""
        flow_id = await self.flow_ids.flow_id()
        if flow_id is None:
            return None
        try:
            data = request.image_bytes or await self._download(request.image_url)
            return await self.upload(data, flow_id) if data else None
        except ServiceError as exc:
            self.log.warning("langflow.upload_failed", error=str(exc))
            return None

    async def _download(self, url: str | None) -> bytes | None:
        if not url:
            return None
        # No credentials go with it, so redirects (to a CDN) are followed to any host; the
        # body is read only up to the cap, not into memory whole before it is measured.
        with self._failures("image download"):
            response = await self._send(
                "GET",
                url,
                headers={},
                stream=True,
                public=True,
            )
            try:
                if response.status_code != 200:
                    raise Unavailable(
                        f"cannot fetch the image: HTTP {response.status_code}", service=SERVICE
                    )
                return await safe_http.read_capped(response, MAX_IMAGE_BYTES, service=SERVICE)
            finally:
                await response.aclose()
