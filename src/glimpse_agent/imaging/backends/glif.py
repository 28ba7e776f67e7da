"""Glif through its Simple API (``POST https://simple-api.glif.app``), with a pre-flight screen
of the glif's blocks against the models Glif forbids API users to run.

What Glif says, and what we make of it:
- HTTP 200 with ``{"error": ...}`` is a failure (Glif's docs: "for legacy reasons the Simple
  API always returns 200 OK"). Glif publishes no list of its error texts (``glifxyz/api-docs``
  and ``glifxyz/glif-mcp-server`` pass them through as they come), so we read the words, and
  when unsure we say "this backend failed, try the next" (``RunFailed``), never "the prompt
  was refused" (``ContentRejected`` stops the whole chain): only safety words refuse a prompt.
  Credits are a credit word next to a credit noun, not "out of" alone ("CUDA out of memory"
  is a GPU failure).
- Any non-2xx status is a failure too; transport errors, 5xx and 429 are retried a few times.
- The image is ``outputFull`` (``type == "IMAGE"``: ``value``, ``width``, ``height``), else the
  ``output`` URL.
- ``GET {api_url}/glifs?id=ID`` describes a glif's blocks; ``GET {api_url}/me`` its credits.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from glimpse_agent.clock import Clock
from glimpse_agent.config import GlifSection
from glimpse_agent.errors import (
    BadResponse,
    ContentRejected,
    RateLimited,
    Rejected,
    ServiceError,
    Unauthorized,
)
from glimpse_agent.http import safe as safe_http
from glimpse_agent.http.errors import error_for_response, short_detail, transport_errors
from glimpse_agent.imaging import costs
from glimpse_agent.imaging._http import (
    RetryPolicy,
    RunFailed,
    as_content_refusal,
    looks_like_content_refusal,
    with_retries,
)
from glimpse_agent.imaging.base import GeneratedImage, ImageRequest
from glimpse_agent.logs import get_logger

ATTRIBUTION = "powered by glif.app (https://glif.app)"
SERVICE = "glif"
MAX_NESTING = 8  # GlifBlocks inside GlifBlocks: deeper than this is refused, not walked

# Separators seen in model names: "flux1-dev", "FLUX.1 [dev]", "flux_pro", "DALL·E 3".
_SEP = r"[\s._\-\[\]():·]{0,3}"
FORBIDDEN_MODELS: dict[str, re.Pattern[str]] = {
    "Stable Diffusion 3": re.compile(
        rf"stable{_SEP}diffusion{_SEP}3(?!\d)|(?<![a-z0-9])sd{_SEP}3(?![0-9a-z])", re.IGNORECASE
    ),
    "DALL-E 3": re.compile(rf"dall{_SEP}e{_SEP}3(?!\d)", re.IGNORECASE),
    # "schnell" is allowed; any FLUX version's pro/dev is not.
    "Flux Pro": re.compile(rf"flux{_SEP}(?:v?\d+(?:{_SEP}\d+)?{_SEP})?pro(?![a-z])", re.IGNORECASE),
    "Flux Dev": re.compile(rf"flux{_SEP}(?:v?\d+(?:{_SEP}\d+)?{_SEP})?dev(?![a-z])", re.IGNORECASE),
}
_RATE_WORDS = re.compile(r"rate.?limit|too many requests|slow down", re.IGNORECASE)
_CREDIT_WORDS = re.compile(
    r"credits?\b|quota|insufficient (?:funds|balance)|(?:out of|no|not enough) (?:credits|balance)",
    re.IGNORECASE,
)
_AUTH_WORDS = re.compile(r"unauthori[sz]ed|invalid token|api token|forbidden", re.IGNORECASE)
_MISSING_WORDS = re.compile(r"glif not found|no such glif|unknown glif", re.IGNORECASE)
# The request's inputs do not fit the glif (strict mode, a wrong block name): configuration.
_INPUT_WORDS = re.compile(
    r"missing input|unknown input|too many inputs|inputs? must|required input|strict mode",
    re.IGNORECASE,
)


class ForbiddenModel(Rejected):
    """The glif (or a glif it nests) uses a model Glif's API terms forbid: fix the config."""

    def __init__(self, glif_id: str, models: list[str]) -> None:
        self.glif_id = glif_id
        self.models = models
        super().__init__(
            f"glif {glif_id} uses {', '.join(models)}, which Glif forbids API users to run; "
            "choose a glif built on an allowed model (e.g. FLUX.1 schnell) or set "
            "check_models = false if this is a false alarm",
            service=SERVICE,
        )


def forbidden_models_in(value: Any) -> set[str]:
    """Names of forbidden models mentioned anywhere in ``value`` (strings, lists, dicts).
    A ComfyBlock's workflow is a string, so it is scanned as text, JSON or not."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(name for name, pattern in FORBIDDEN_MODELS.items() if pattern.search(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= forbidden_models_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= forbidden_models_in(item)
    return found


def input_names(nodes: list[dict[str, Any]]) -> list[str]:
    """The names of a glif's input blocks, in the order positional inputs fill them."""
    return [
        str(n.get("name", ""))
        for n in nodes
        if str(n.get("type", "")).endswith("InputBlock") or n.get("type") == "MultipickBlock"
    ]


def classify_error_text(message: str) -> ServiceError:
    """Our error for Glif's HTTP-200 ``error`` field. Safety words refuse the prompt; rate,
    credits, auth and configuration words say so; anything else (a GPU out of memory, a node
    failure, a strict-input complaint in words we do not know) is this backend failing."""
    text = short_detail(message)
    if looks_like_content_refusal(message):
        return ContentRejected(text, service=SERVICE, status=None)
    if _RATE_WORDS.search(message):
        return RateLimited(text, service=SERVICE, status=None)
    if _CREDIT_WORDS.search(message):
        return RateLimited(text, service=SERVICE, status=None, bucket="credits")
    if _AUTH_WORDS.search(message):
        return Unauthorized(text, service=SERVICE, status=None)
    if _MISSING_WORDS.search(message) or _INPUT_WORDS.search(message):
        return Rejected(text, service=SERVICE, status=None)
    return RunFailed(text, service=SERVICE, status=None)


class GlifBackend:
    """``[images.glif]``: one glif run per image."""

    name = "glif"

    def __init__(
        self,
        section: GlifSection,
        *,
        http: httpx.AsyncClient,
        clock: Clock,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.section = section
        self.http = http
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.log = get_logger("glimpse_agent.imaging.backends.glif")
        # Per glif id: the forbidden models its blocks use ([] = clean). A glif's source rarely
        # changes, and the screen costs one request per nested glif: once per process is enough.
        self._verdicts: dict[str, list[str]] = {}
        self._input_names: list[str] | None = None

    def estimated_cost(self) -> float:
        return costs.flat_cost(self.name, self.section.cost_usd)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.section.token.get_secret_value()}"}

    # ------------------------------------------------------------------ metadata

    async def _get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        url = self.section.api_url.rstrip("/") + path
        with transport_errors(SERVICE, secrets=self._headers().values()):
            response = await safe_http.send(
                self.http,
                "GET",
                url,
                service=SERVICE,
                params=params,
                headers=self._headers(),
                timeout=min(self.section.timeout, 30.0),
            )
        if response.status_code != 200:
            raise as_content_refusal(error_for_response(response, service=SERVICE))
        try:
            return response.json()
        except ValueError as exc:
            raise BadResponse(f"{path} did not answer JSON", service=SERVICE) from exc

    async def _nodes(self, glif_id: str) -> list[dict[str, Any]]:
        """The blocks of ``glif_id``; ``Rejected`` if Glif does not know it."""
        body = await with_retries(
            lambda: self._get_json("/glifs", {"id": glif_id}),
            policy=self.retry,
            sleep=self.clock.sleep,
            log=self.log,
            backend=self.name,
        )
        if not isinstance(body, list) or not body:
            raise Rejected(f"glif {glif_id} not found", service=SERVICE, status=404)
        data = body[0].get("data") if isinstance(body[0], dict) else None
        nodes = data.get("nodes") if isinstance(data, dict) else None
        if not isinstance(nodes, list):
            raise BadResponse(f"glif {glif_id} has no readable nodes", service=SERVICE)
        return [n for n in nodes if isinstance(n, dict)]

    async def screen(self, glif_id: str | None = None) -> None:
        """Raise ``ForbiddenModel`` if the glif, or any glif it nests, uses a forbidden model."""
        glif_id = glif_id or self.section.glif_id
        found = await self._scan(glif_id, visiting=set(), depth=0)
        if found:
            raise ForbiddenModel(glif_id, found)

    async def _scan(self, glif_id: str, *, visiting: set[str], depth: int) -> list[str]:
        if glif_id in self._verdicts:
            return self._verdicts[glif_id]
        if glif_id in visiting:
            return []  # a cycle: the glif is already being scanned further up
        if depth > MAX_NESTING:
            raise Rejected(
                f"glif {glif_id} nests glifs more than {MAX_NESTING} deep", service=SERVICE
            )
        visiting.add(glif_id)
        nodes = await self._nodes(glif_id)
        if glif_id == self.section.glif_id:
            self._input_names = input_names(nodes)
        found = forbidden_models_in([n.get("params") for n in nodes])
        for node in nodes:
            params = node.get("params")
            if node.get("type") == "GlifBlock" and isinstance(params, dict):
                nested = params.get("id")
                if isinstance(nested, str) and nested:
                    found.update(await self._scan(nested, visiting=visiting, depth=depth + 1))
        verdict = sorted(found)
        self._verdicts[glif_id] = verdict
        return verdict

    # ------------------------------------------------------------------ running

    async def _inputs(self, prompt: str) -> list[str] | dict[str, str]:
        where = self.section.prompt_input
        if isinstance(where, str):
            return {**self.section.inputs, where: prompt}
        if where == 0 and not self.section.inputs:
            return [prompt]
        # A position other than the first, or extra named inputs: Glif takes one style or
        # the other, so turn the position into the block's name.
        if self._input_names is None:
            self._input_names = input_names(await self._nodes(self.section.glif_id))
        if where >= len(self._input_names):
            raise Rejected(
                f"prompt_input = {where}, but glif {self.section.glif_id} has "
                f"{len(self._input_names)} input block(s)",
                service=SERVICE,
            )
        return {**self.section.inputs, self._input_names[where]: prompt}

    async def _run_once(self, body: dict[str, Any]) -> dict[str, Any]:
        params = {"strict": "1"} if self.section.strict else None
        with transport_errors(SERVICE, secrets=self._headers().values()):
            response = await safe_http.send(
                self.http,
                "POST",
                self.section.base_url,
                service=SERVICE,
                json=body,
                params=params,
                headers=self._headers(),
                timeout=self.section.timeout,
            )
        if not 200 <= response.status_code < 300:
            raise as_content_refusal(error_for_response(response, service=SERVICE))
        try:
            reply = response.json()
        except ValueError as exc:
            raise BadResponse("the Simple API did not answer JSON", service=SERVICE) from exc
        if not isinstance(reply, dict):
            raise BadResponse(
                "the Simple API answered something other than an object", service=SERVICE
            )
        error = reply.get("error")
        if error:
            raise classify_error_text(error if isinstance(error, str) else str(error))
        return reply

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        started = time.perf_counter()
        if self.section.check_models:
            await self.screen()
        screened = time.perf_counter()
        body = {"id": self.section.glif_id, "inputs": await self._inputs(request.prompt)}
        reply = await with_retries(
            lambda: self._run_once(body),
            policy=self.retry,
            sleep=self.clock.sleep,
            log=self.log,
            backend=self.name,
        )
        done = time.perf_counter()
        image = self._image_from(reply)
        return GeneratedImage(
            backend=self.name,
            model=f"glif:{self.section.glif_id}",
            prompt=request.prompt,
            cost_usd=self.estimated_cost(),
            timings={
                "screen": screened - started,
                "request": done - screened,
                "total": done - started,
            },
            attribution=ATTRIBUTION if self.section.attribution else None,
            **image,
        )

    def _image_from(self, reply: Mapping[str, Any]) -> dict[str, Any]:
        full = reply.get("outputFull")
        value: Any = None
        width = height = None
        if isinstance(full, dict) and full.get("type"):
            if str(full["type"]).upper() != "IMAGE":
                raise BadResponse(
                    f"glif {self.section.glif_id} returned {full['type']}, not an image",
                    service=SERVICE,
                )
            value = full.get("value")
            width, height = _int_or_none(full.get("width")), _int_or_none(full.get("height"))
        if not isinstance(value, str) or not value:
            value = reply.get("output")
        if not isinstance(value, str) or not value:
            raise BadResponse("the run produced no output", service=SERVICE)
        if value.startswith("data:image/"):
            return {
                "data": _decode_data_url(value),
                "mime_type": value[5:].split(";")[0],
                "width": width,
                "height": height,
            }
        if not value.startswith(("http://", "https://")):
            raise BadResponse("the output is not an image URL", service=SERVICE)
        return {"url": value, "width": width, "height": height}

    # ------------------------------------------------------------------ check

    async def check(self) -> None:
        """The token works, the account has credits, and (if on) the glif passes the screen."""
        me = await self._get_json("/me")
        credits = me.get("credits") if isinstance(me, dict) else None
        remaining = credits.get("remaining") if isinstance(credits, dict) else None
        if isinstance(remaining, int | float) and remaining <= 0:
            raise RateLimited(
                "no credits left on the Glif account",
                service=SERVICE,
                status=None,
                bucket="credits",
            )
        if self.section.check_models:
            await self.screen()
        else:
            await self._nodes(self.section.glif_id)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _decode_data_url(value: str) -> bytes:
    try:
        return base64.b64decode(value.split(",", 1)[1], validate=True)
    except (IndexError, binascii.Error) as exc:
        raise BadResponse("the output data URL is not valid base64", service=SERVICE) from exc
