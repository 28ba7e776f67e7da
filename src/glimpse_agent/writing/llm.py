"""Text from an OpenAI-compatible chat-completions API (OpenAI, vLLM, Ollama, LM Studio...)
through the official ``openai`` SDK: image-prompt ideas, captions, comments and replies.

``openai`` is imported when a writer is built, never when this module is imported (it costs
~0.7 s and ~40 MiB, paid only when ``[llm]`` is configured). This module is the only place
that knows the SDK's exceptions; they leave it as our errors.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from glimpse_agent.config import LLMSection, SafetySection
from glimpse_agent.errors import (
    BadResponse,
    ContentRejected,
    Rejected,
    ServiceError,
    Unavailable,
)
from glimpse_agent.http.errors import error_for_status, status_text, timed_out
from glimpse_agent.http.retry_after import retry_after_of
from glimpse_agent.persona import Persona
from glimpse_agent.redaction import redact_text
from glimpse_agent.writing import prompts
from glimpse_agent.writing.base import CaptionRequest

if TYPE_CHECKING:
    from openai import AsyncOpenAI

SERVICE = "llm"
# Local servers (Ollama, LM Studio) want no key, but the SDK insists on one: send a dummy
# rather than let the SDK fall back to $OPENAI_API_KEY behind the config's back.
NO_KEY = "not-needed"
CONNECT_TIMEOUT = 10.0


def translate(exc: Exception) -> ServiceError:
    """Our error for an ``openai`` SDK exception (the one place that knows their shapes); the
    statuses every service shares are read by ``glimpse_agent.http.errors``."""
    import openai

    message = redact_text(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    if isinstance(exc, openai.APITimeoutError):
        return timed_out(SERVICE)
    if isinstance(exc, openai.APIConnectionError):
        return Unavailable(f"cannot connect: {message}", service=SERVICE)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = status_text(status, message)
        if status == 409:
            # OpenAI's "another request holds the lock": the SDK retries it too.
            return Unavailable(detail, service=SERVICE, status=status)
        quota = status == 429 and exc.code == "insufficient_quota"
        error = error_for_status(
            status,
            detail,
            service=SERVICE,
            retry_after=retry_after_of(exc.response.headers),
            bucket="quota" if quota else None,
        )
        if type(error) is Rejected and (
            exc.code == "content_filter" or "content_policy" in (exc.code or "")
        ):
            return ContentRejected(detail, service=SERVICE, status=status)
        return error
    if isinstance(exc, openai.APIResponseValidationError):
        return BadResponse(f"unexpected answer: {message}", service=SERVICE)
    return Unavailable(message, service=SERVICE)


class LLMWriter:
    """Writes for one persona through a chat model. Every method returns the model's text,
    cleaned of wrapping quotes and labels, or raises a ``ServiceError``; it does not judge
    safety (the caller's ``produce_safe`` does)."""

    name = "llm"

    def __init__(
        self,
        section: LLMSection,
        persona: Persona,
        safety: SafetySection | None = None,
        *,
        max_retries: int = 1,
    ) -> None:
        self.section = section
        self.persona = persona
        self.limits = safety or SafetySection()
        self._max_retries = max_retries
        self._made: AsyncOpenAI | None = None

    @property
    def _client(self) -> AsyncOpenAI:
        """The SDK client, made (and the SDK imported) at the first call: a persona that never
        asks its model, and a fleet of hundreds that ask rarely, pay nothing for it until then."""
        if self._made is None:
            import openai  # lazily: see the module docstring

            section = self.section
            key = section.api_key.get_secret_value() if section.api_key else NO_KEY
            # One SDK retry absorbs a blip; the overall deadline in ``complete`` stops the SDK
            # from honouring a long Retry-After (it would wait up to two minutes).
            self._made = openai.AsyncOpenAI(
                base_url=section.base_url,
                api_key=key,
                max_retries=self._max_retries,
                timeout=openai.Timeout(
                    section.timeout, connect=min(CONNECT_TIMEOUT, section.timeout)
                ),
            )
        return self._made

    async def aclose(self) -> None:
        if self._made is not None:
            await self._made.close()

    async def complete(self, messages: list[prompts.Message]) -> str:
        """The assistant's text for ``messages``, or our error."""
        import openai

        try:
            async with asyncio.timeout(self.section.timeout * 1.5):
                response = await self._client.chat.completions.create(
                    model=self.section.model,
                    messages=cast(Any, messages),
                    temperature=self.section.temperature,
                )
        except TimeoutError:
            raise timed_out(SERVICE) from None
        except openai.OpenAIError as exc:
            raise translate(exc) from None
        choices = getattr(response, "choices", None) or []
        content = choices[0].message.content if choices else None
        if not isinstance(content, str) or not content.strip():
            finish = choices[0].finish_reason if choices else "no choices"
            if finish == "content_filter":
                raise ContentRejected("the model's content filter stopped it", service=SERVICE)
            raise BadResponse(f"empty answer (finish_reason={finish})", service=SERVICE)
        return prompts.clean_output(content)

    async def check(self) -> None:
        """Return if the server accepts the key and offers the model; else raise.

        ``GET /models`` costs nothing. A server without it (404/405) gets a one-token chat
        instead. Ollama's ``name:latest`` counts as ``name``."""
        import openai

        try:
            async with asyncio.timeout(self.section.timeout * 1.5):
                try:
                    page = await self._client.models.list()
                except openai.APIStatusError as exc:
                    if exc.status_code not in (404, 405):
                        raise
                    await self._client.chat.completions.create(
                        model=self.section.model,
                        messages=[{"role": "user", "content": "Say OK."}],
                        max_tokens=1,
                    )
                    return
        except TimeoutError:
            raise timed_out(SERVICE) from None
        except openai.OpenAIError as exc:
            raise translate(exc) from None
        offered = [str(getattr(m, "id", "")) for m in getattr(page, "data", None) or []]
        wanted = self.section.model
        if offered and not any(m in (wanted, f"{wanted}:latest") for m in offered):
            shown = ", ".join(sorted(offered)[:8]) + (", ..." if len(offered) > 8 else "")
            raise Rejected(
                f"model {wanted!r} is not among the {len(offered)} the server offers ({shown}); "
                "check llm.model",
                service=SERVICE,
            )

    async def image_prompt(
        self, topic: str, angle: str | None, recent: list[str], attempt: int = 0
    ) -> str:
        return await self.complete(
            prompts.image_prompt_messages(self.persona, topic, angle, recent, attempt)
        )

    async def caption(self, request: CaptionRequest, attempt: int = 0) -> str:
        return await self.complete(
            prompts.caption_messages(
                self.persona,
                request,
                max_chars=self.limits.caption_max_chars,
                max_hashtags=self.limits.max_hashtags,
                attempt=attempt,
            )
        )

    async def comment(
        self, post_caption: str, author_name: str, topic_hint: str | None, attempt: int = 0
    ) -> str:
        return await self.complete(
            prompts.comment_messages(
                self.persona,
                post_caption,
                author_name,
                topic_hint,
                max_chars=self.limits.comment_max_chars,
                attempt=attempt,
            )
        )

    async def reply(
        self, comment_text: str, author_name: str, own_caption: str, attempt: int = 0
    ) -> str:
        return await self.complete(
            prompts.reply_messages(
                self.persona,
                comment_text,
                author_name,
                own_caption,
                max_chars=self.limits.comment_max_chars,
                attempt=attempt,
            )
        )

    async def write_caption(self, request: CaptionRequest, attempt: int) -> str:
        """The ``CaptionSource`` face of the writer."""
        return await self.caption(request, attempt)
