"""Hugging Face text-to-image (FLUX.1-schnell by default) with the user's own token, through
``huggingface_hub.AsyncInferenceClient``.

The SDK is imported on first use, never at start-up: a persona without this backend never
loads it. It has no timeout and no retries of its own, so we set one and retry 429/503 and
timeouts ourselves. Its errors (``HfHubHTTPError``, ``InferenceTimeoutError``, and httpx2
transport errors it lets through) are translated here and nowhere else.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from typing import TYPE_CHECKING, Any

from glimpse_agent.clock import Clock
from glimpse_agent.config import HuggingFaceSection
from glimpse_agent.errors import BadResponse, ConfigError, Problem, Rejected, ServiceError
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
from glimpse_agent.logs import get_logger

if TYPE_CHECKING:
    from huggingface_hub import AsyncInferenceClient
    from PIL.Image import Image

SERVICE = "huggingface"


def _import_sdk() -> Any:
    # The Hub reads this when it is first imported: set it before that, and force the flag
    # in case something imported the Hub earlier (it is read at each use).
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import huggingface_hub
        import huggingface_hub.constants
    except ImportError as exc:  # pragma: no cover - a packaging problem
        raise ConfigError(
            [
                Problem(
                    "agent.toml",
                    "images.huggingface",
                    "the huggingface_hub package is not installed",
                )
            ]
        ) from exc
    huggingface_hub.constants.HF_HUB_DISABLE_TELEMETRY = True
    return huggingface_hub


def _png(image: Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class HuggingFaceBackend:
    """``[images.huggingface]``: one ``text_to_image`` call per image."""

    name = "huggingface"

    def __init__(
        self, section: HuggingFaceSection, *, clock: Clock, retry: RetryPolicy | None = None
    ) -> None:
        self.section = section
        self.clock = clock
        # A FLUX schnell run costs little and a 503/timeout is usually a cold model: two more
        # tries are worth it (429s wait for Retry-After).
        self.retry = retry or RetryPolicy(attempts=3, base_delay=2.0)
        self.log = get_logger("glimpse_agent.imaging.backends.huggingface")
        self._client: AsyncInferenceClient | None = None

    def estimated_cost(self) -> float:
        return costs.flat_cost(self.name, self.section.cost_usd)

    def _get_client(self) -> AsyncInferenceClient:
        if self._client is None:
            hub = _import_sdk()
            token = self.section.token.get_secret_value()
            if self.section.base_url:
                # A URL as the model: the client posts to it as is (Inference Endpoints,
                # self-hosted servers, and our emulator).
                self._client = hub.AsyncInferenceClient(
                    base_url=self.section.base_url, token=token, timeout=self.section.timeout
                )
            else:
                self._client = hub.AsyncInferenceClient(
                    model=self.section.model,
                    provider=self.section.provider,
                    token=token,
                    timeout=self.section.timeout,
                )
        return self._client

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        started = time.perf_counter()
        width = request.width or self.section.width
        height = request.height or self.section.height
        image = await with_retries(
            lambda: self._call(request, width, height),
            policy=self.retry,
            sleep=self.clock.sleep,
            log=self.log,
            backend=self.name,
        )
        done = time.perf_counter()
        data = await asyncio.to_thread(_png, image)
        return GeneratedImage(
            backend=self.name,
            model=self.section.model,
            prompt=request.prompt,
            data=data,
            mime_type="image/png",
            width=image.width,
            height=image.height,
            cost_usd=self.estimated_cost(),
            timings={"request": done - started, "total": time.perf_counter() - started},
        )

    async def _call(self, request: ImageRequest, width: int, height: int) -> Image:
        client = self._get_client()
        try:
            image: Image = await client.text_to_image(
                request.prompt,
                width=width,
                height=height,
                num_inference_steps=self.section.steps,
                seed=request.seed,
            )
        except Exception as exc:
            ours = self._translate(exc)
            if ours is None:
                raise
            raise ours from exc
        return image

    def _translate(self, exc: Exception) -> ServiceError | None:
        """Our error for what the SDK raised, or None if it is not the SDK's (a bug)."""
        hub = _import_sdk()
        import httpx2  # the SDK's HTTP stack: already loaded with it

        if isinstance(exc, hub.errors.InferenceTimeoutError | httpx2.TimeoutException):
            return timed_out(SERVICE, reason=f"no answer within {self.section.timeout:.0f} s")
        if isinstance(exc, hub.errors.HfHubHTTPError):
            response = exc.response
            detail = short_detail(exc.server_message or short_detail(response.content))
            status = response.status_code
            return as_content_refusal(
                error_for_status(
                    status,
                    status_text(status, detail),
                    service=SERVICE,
                    retry_after=retry_after_of(response.headers),
                )
            )
        # The SDK's HTTP stack is httpx2, not httpx: same failures, other classes.
        secrets = [self.section.token.get_secret_value()]
        if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
            return broke_off(SERVICE, reason=transport_reason(exc, secrets))
        if isinstance(exc, httpx2.TransportError):
            return unreachable(SERVICE, reason=transport_reason(exc, secrets))
        if isinstance(exc, ValueError):
            # The SDK's own validation (unknown provider, unsupported task): configuration.
            return Rejected(short_detail(str(exc)), service=SERVICE)
        if isinstance(exc, OSError):
            # Pillow could not read what came back.
            return BadResponse(
                f"the answer is not an image ({type(exc).__name__})", service=SERVICE
            )
        return None

    async def check(self) -> None:
        """The SDK loads and, against the Hub itself, the token is accepted (``whoami``)."""
        self._get_client()
        if self.section.base_url:
            return  # an endpoint has no free call that proves the token
        hub = _import_sdk()
        try:
            await asyncio.to_thread(hub.whoami, token=self.section.token.get_secret_value())
        except Exception as exc:
            ours = self._translate(exc)
            if ours is None:
                raise
            raise ours from exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
