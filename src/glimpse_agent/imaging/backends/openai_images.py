"""OpenAI image generation (gpt-image models) with the user's own key, through
``openai.AsyncOpenAI``.

The SDK is imported on first use, never at start-up. Its own retries are off
(``max_retries=0``) and its timeout finite: a timed-out image may still be billed, so whether to
send a request again is decided here, and a timeout is never sent again. The SDK's errors
(``RateLimitError``, ``APIStatusError``, ``APITimeoutError``, ``APIConnectionError``) are
translated here and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import TYPE_CHECKING, Any

from glimpse_agent.clock import Clock
from glimpse_agent.config import OpenAIImagesSection
from glimpse_agent.errors import (
    BadResponse,
    ConfigError,
    ContentRejected,
    Problem,
    RateLimited,
    ServiceError,
)
from glimpse_agent.http.errors import (
    broke_off,
    error_for_status,
    short_detail,
    status_text,
    timed_out,
    transport_reason,
    unreachable,
)
from glimpse_agent.http.retry_after import retry_after_of
from glimpse_agent.imaging import costs
from glimpse_agent.imaging._http import RetryPolicy, as_content_refusal, with_retries
from glimpse_agent.imaging.base import GeneratedImage, ImageRequest
from glimpse_agent.imaging.prepare import image_size, sniff_mime
from glimpse_agent.logs import get_logger

if TYPE_CHECKING:
    from openai import AsyncOpenAI

SERVICE = "openai"
# Sizes the gpt-image models take, by aspect ratio (width / height).
SIZES = {"1024x1024": 1.0, "1536x1024": 1.5, "1024x1536": 2 / 3}
_CONTENT_CODES = frozenset({"moderation_blocked", "content_policy_violation"})


def size_for(request: ImageRequest, configured: str) -> str:
    """The supported size closest in shape to the request's, else the configured one."""
    if not request.width or not request.height:
        return configured
    aspect = request.width / request.height
    return min(SIZES, key=lambda s: abs(SIZES[s] - aspect))


def _import_sdk() -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - a packaging problem
        raise ConfigError(
            [Problem("agent.toml", "images.openai", "the openai package is not installed")]
        ) from exc
    return openai


class OpenAIImagesBackend:
    """``[images.openai]``: one ``images.generate`` call per image."""

    name = "openai"

    def __init__(
        self, section: OpenAIImagesSection, *, clock: Clock, retry: RetryPolicy | None = None
    ) -> None:
        self.section = section
        self.clock = clock
        self.retry = retry or RetryPolicy(attempts=2, base_delay=2.0, retry_unanswered=False)
        self.log = get_logger("glimpse_agent.imaging.openai")
        self._client: AsyncOpenAI | None = None

    def estimated_cost(self) -> float:
        s = self.section
        return costs.openai_cost(s.model, s.quality, s.size, s.cost_usd)

    def _secrets(self) -> list[str]:
        return [self.section.api_key.get_secret_value()]

    def _get_client(self) -> AsyncOpenAI:
        if self._client is None:
            openai = _import_sdk()
            self._client = openai.AsyncOpenAI(
                api_key=self.section.api_key.get_secret_value(),
                base_url=self.section.base_url,
                max_retries=0,
                timeout=self.section.timeout,
            )
        return self._client

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        started = time.perf_counter()
        size = size_for(request, self.section.size)
        b64 = await with_retries(
            lambda: self._call(request.prompt, size),
            policy=self.retry,
            sleep=self.clock.sleep,
            log=self.log,
            backend=self.name,
        )
        done = time.perf_counter()
        try:
            data = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise BadResponse("b64_json is not valid base64", service=SERVICE) from exc
        mime = sniff_mime(data)
        if mime is None:
            raise BadResponse("b64_json is not an image", service=SERVICE)
        dims = image_size(data)
        s = self.section
        return GeneratedImage(
            backend=self.name,
            model=s.model,
            prompt=request.prompt,
            data=data,
            mime_type=mime,
            width=dims[0] if dims else None,
            height=dims[1] if dims else None,
            cost_usd=costs.openai_cost(s.model, s.quality, size, s.cost_usd),
            timings={"request": done - started, "total": time.perf_counter() - started},
        )

    async def _call(self, prompt: str, size: str) -> str:
        client = self._get_client()
        try:
            reply = await client.images.generate(
                model=self.section.model,
                prompt=prompt,
                size=size,
                quality=self.section.quality,
                n=1,
            )
        except Exception as exc:
            ours = self._translate(exc)
            if ours is None:
                raise
            raise ours from exc
        first = reply.data[0] if reply.data else None
        if first is None or not first.b64_json:
            raise BadResponse("the reply holds no b64_json image", service=SERVICE)
        return first.b64_json

    def _translate(self, exc: Exception) -> ServiceError | None:
        """Our error for what the SDK raised, or None if it is not the SDK's (a bug)."""
        openai = _import_sdk()
        if isinstance(exc, openai.APITimeoutError):
            return timed_out(SERVICE, reason=f"no answer within {self.section.timeout:.0f} s")
        if isinstance(exc, openai.APIConnectionError):
            import httpx2  # the SDK's HTTP stack: already loaded with it

            cause = exc.__cause__
            if isinstance(cause, httpx2.RemoteProtocolError | httpx2.ReadError):
                # Sent, and the answer broke off: the image may be billed, so not sent again.
                return broke_off(SERVICE, reason=transport_reason(cause, self._secrets()))
            return unreachable(SERVICE)
        if isinstance(exc, openai.APIStatusError):
            code = getattr(exc, "code", None)
            detail = short_detail(exc.body if exc.body is not None else exc.message)
            status = exc.status_code
            if code in _CONTENT_CODES:
                return ContentRejected(status_text(status, detail), service=SERVICE, status=status)
            if isinstance(exc, openai.RateLimitError) and code == "insufficient_quota":
                # No quota left: waiting seconds will not help; the next backend might.
                return RateLimited(
                    status_text(status, detail), service=SERVICE, status=status, bucket="quota"
                )
            return as_content_refusal(
                error_for_status(
                    status,
                    status_text(status, detail),
                    service=SERVICE,
                    retry_after=retry_after_of(exc.response.headers),
                )
            )
        if isinstance(exc, openai.OpenAIError):
            return BadResponse(short_detail(str(exc)), service=SERVICE)
        return None

    async def check(self) -> None:
        """The key is accepted and the configured model exists (``GET /models/{model}``)."""
        client = self._get_client()
        try:
            await client.models.retrieve(self.section.model)
        except Exception as exc:
            ours = self._translate(exc)
            if ours is None:
                raise
            raise ours from exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
