"""``Writing``: everything the agent asks of the writing room, behind four awaitables, and
``build_writing`` which assembles it from the config.

Every text that leaves goes through ``produce_safe`` (regenerate once, then skip): captions via
the chain, comments and replies here. Image prompts never fail: when the LLM is missing, failing
or refused twice, Glimpse's prompt optimiser (if given) and then the templates answer.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets as _random
import zlib
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Literal

import httpx

from glimpse_agent.clock import Clock
from glimpse_agent.config import AgentConfig, secret_values
from glimpse_agent.errors import ConfigError, Problem, ServiceError, Unavailable
from glimpse_agent.logs import get_logger
from glimpse_agent.persona import Persona
from glimpse_agent.planner.ideas import is_repeat_of
from glimpse_agent.writing.base import Caption, CaptionRequest, CaptionSource, GlimpseHelpers
from glimpse_agent.writing.chain import CaptionChain, GlimpseCaptionSource, TemplateCaptionSource
from glimpse_agent.writing.langflow import LangflowCaptioner, tweak_map_problems
from glimpse_agent.writing.llm import LLMWriter
from glimpse_agent.writing.safety import SafetyFilter, Verdict, produce_safe
from glimpse_agent.writing.templates import Templates

_RESEED = 1009  # a retry's template seed: far from the next call's seed


class Writing:
    """Prompts, captions, comments and replies for one persona. ``None`` from a method means
    the action must be skipped: no text passed the safety filter."""

    def __init__(
        self,
        persona: Persona,
        *,
        safety: SafetyFilter,
        chain: CaptionChain,
        templates: Templates,
        llm: LLMWriter | None = None,
        glimpse: GlimpseHelpers | None = None,
        seed: int = 0,
        closers: Iterable[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.persona = persona
        self.safety = safety
        self.chain = chain
        self.templates = templates
        self.llm = llm
        self.glimpse = glimpse
        self._seeds = itertools.count(seed)
        self._closers = list(closers)
        self.log = get_logger("glimpse_agent.writing", persona=persona.name)

    def _seed(self) -> int:
        return next(self._seeds)

    # ------------------------------------------------------------------ image prompts

    async def image_prompt(self, topic: str, angle: str | None, recent_prompts: list[str]) -> str:
        """A fresh image prompt for ``topic`` that is none of ``recent_prompts``. Never fails."""
        seed = self._seed()
        # The caller passes the prompts of its idea memory (30 days): the same test as the
        # planner's ``is_repeat_of``, so a near-copy in other words is refused here and rewritten.
        # Every prompt carries the art style: left out of the comparison (as the planner does),
        # or a long style alone would make two different subjects look like one idea.
        style = self.persona.art_style

        def check(text: str) -> Verdict:
            verdict = self.safety.check(text, "prompt")
            if is_repeat_of(text, recent_prompts, common=style):
                return Verdict((*verdict.reasons, "repeat: the same idea as a recent prompt"))
            return verdict

        if self.llm is not None:
            llm = self.llm

            async def generate(attempt: int) -> str | None:
                try:
                    return await llm.image_prompt(topic, angle, recent_prompts, attempt)
                except ServiceError as exc:
                    self.log.warning("prompt.llm_failed", error=str(exc), kind=type(exc).__name__)
                    return None

            text = await produce_safe(generate, check, log=self.log, action="image_prompt")
            if text:
                return text
        fallback = self.templates.image_prompt(topic, angle, seed, recent_prompts)
        for k in range(1, 8):  # the template's light and framing vary with the seed
            if not is_repeat_of(fallback, recent_prompts, common=style):
                break
            fallback = self.templates.image_prompt(topic, angle, seed + k * _RESEED, recent_prompts)
        if self.glimpse is not None and self.llm is None:
            try:
                optimized = await self.glimpse.optimize_prompt(
                    fallback, style=self.persona.art_style or None
                )
            except ServiceError as exc:
                self.log.warning("prompt.optimize_failed", error=str(exc))
            else:
                if optimized and check(optimized.strip()).ok:
                    return optimized.strip()
        return fallback

    # ------------------------------------------------------------------ captions

    async def caption(self, request: CaptionRequest) -> Caption | None:
        """A safe caption from the first source of ``captions.order`` that works."""
        return await self.chain.caption(request)

    # ------------------------------------------------------------------ comments, replies

    async def comment_on(
        self, post_caption: str, author_name: str, topic_hint: str | None = None
    ) -> str | None:
        """A comment on another agent's post, or None (skip). ``post_caption`` is untrusted."""
        seed = self._seed()
        llm = self.llm

        async def llm_call(attempt: int) -> str:
            assert llm is not None
            return await llm.comment(post_caption, author_name, topic_hint, attempt)

        def template(attempt: int) -> str:
            return self.templates.comment(
                author_name, topic_hint, seed + attempt * _RESEED, use_name=attempt == 0
            )

        return await self._safe_text("comment", post_caption, llm_call if llm else None, template)

    async def reply_to(
        self, comment_text: str, author_name: str, own_caption: str = ""
    ) -> str | None:
        """A reply to a comment on our post, or None (skip). ``comment_text`` is untrusted."""
        seed = self._seed()
        llm = self.llm

        async def llm_call(attempt: int) -> str:
            assert llm is not None
            return await llm.reply(comment_text, author_name, own_caption, attempt)

        def template(attempt: int) -> str:
            return self.templates.reply(
                author_name, seed + attempt * _RESEED, use_name=attempt == 0
            )

        return await self._safe_text("reply", comment_text, llm_call if llm else None, template)

    async def _safe_text(
        self,
        kind: Literal["comment", "reply"],
        source: str,
        llm_call: Callable[[int], Awaitable[str]] | None,
        template: Callable[[int], str],
    ) -> str | None:
        llm_down = llm_call is None

        async def generate(attempt: int) -> str | None:
            nonlocal llm_down
            if not llm_down and llm_call is not None:
                try:
                    return await llm_call(attempt)
                except ServiceError as exc:
                    # The template answers instead, for this attempt and the retry.
                    llm_down = True
                    self.log.warning(f"{kind}.llm_failed", error=str(exc), kind=type(exc).__name__)
            return template(attempt)

        return await produce_safe(
            generate, lambda t: self.safety.check(t, kind, source=source), log=self.log, action=kind
        )

    # ------------------------------------------------------------------ check

    async def check(self, seconds_each: float = 60.0) -> dict[str, Exception | None]:
        """Each caption source (in ``captions.order``), then the LLM when it is configured but
        not a caption source (it still writes prompts and comments): None if usable, else the
        error its check raised. Sources without a check of their own (templates; Glimpse's
        suggestions, which ride on the Glimpse key) are None. Checks run concurrently, each
        within ``seconds_each``."""
        probes: dict[str, Callable[[], Awaitable[None]] | None] = {
            source.name: getattr(source, "check", None) for source in self.chain.sources
        }
        if self.llm is not None:
            probes.setdefault("llm", self.llm.check)

        async def run(name: str, probe: Callable[[], Awaitable[None]] | None) -> Exception | None:
            if probe is None:
                return None
            try:
                async with asyncio.timeout(seconds_each):
                    await probe()
            except TimeoutError:
                return Unavailable(f"no answer within {seconds_each:g} s", service=name)
            except Exception as exc:
                return exc
            return None

        outcomes = await asyncio.gather(*(run(n, p) for n, p in probes.items()))
        return dict(zip(probes, outcomes, strict=True))

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the clients this object created (not the ``http`` client it was given)."""
        for close in self._closers:
            await close()
        self._closers.clear()

    async def __aenter__(self) -> Writing:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def build_writing(
    config: AgentConfig,
    persona: Persona,
    *,
    glimpse: GlimpseHelpers | None = None,
    http: httpx.AsyncClient | None = None,
    secrets: Iterable[str] = (),
    seed: int | None = None,
    clock: Clock | None = None,
) -> Writing:
    """The writing room for ``persona`` as ``config`` describes it.

    ``secrets``: values the filter must never let out, on top of every secret in ``config``.
    ``http``: shared client for Langflow (one is created, and closed by ``aclose``, if needed).
    ``seed``: template variation start (default: random, so a restart does not repeat itself).
    ``clock``: the agent's (simulated in `simulate`/`sandbox`), for cool-downs; default real.
    Raises ``ConfigError`` for a ``tweak_map`` the server would refuse."""
    log = get_logger("glimpse_agent.writing", persona=persona.name)
    safety = SafetyFilter(config.safety, [*secret_values(config), *secrets])
    templates = Templates(persona, max_hashtags=config.safety.max_hashtags)
    if seed is None:
        seed = _random.randbelow(1 << 30)
    seed += zlib.crc32(persona.name.encode())
    closers: list[Callable[[], Awaitable[None]]] = []
    llm = LLMWriter(config.llm, persona, config.safety) if config.llm is not None else None
    if llm is not None:
        closers.append(llm.aclose)
    sources: list[CaptionSource] = []
    for name in config.captions.order or []:
        if name == "langflow" and config.captions.langflow is not None:
            section = config.captions.langflow
            problems = tweak_map_problems(section)
            if problems:
                raise ConfigError([Problem(str(config.source), k, m) for k, m in problems])
            if http is None:
                http = httpx.AsyncClient(follow_redirects=True)
                closers.append(http.aclose)
            sources.append(LangflowCaptioner(section, persona, http=http, clock=clock))
        elif name == "llm" and llm is not None:
            sources.append(llm)
        elif name == "glimpse" and glimpse is not None:
            sources.append(GlimpseCaptionSource(glimpse))
        elif name == "template":
            sources.append(TemplateCaptionSource(templates, seed))
        else:
            log.info(
                "caption.source_skipped",
                source=name,
                reason="not configured" if name != "glimpse" else "no Glimpse client",
            )
    if not any(s.name == "template" for s in sources):
        log.warning(
            "caption.no_template",
            order=[s.name for s in sources],
            note="a post is skipped when every caption source fails",
        )
    chain = CaptionChain(sources, safety, log=log, clock=clock)
    log.debug("writing.ready", caption_order=chain.order, llm=llm is not None)
    return Writing(
        persona,
        safety=safety,
        chain=chain,
        templates=templates,
        llm=llm,
        glimpse=glimpse,
        seed=seed,
        closers=closers,
    )
