"""``Poster``: making and publishing one post: idea, image prompt, image (router), caption
(chain + safety), write-ahead intent, ``create_post``, settlement in one atomic ledger write. A
timeout on ``create_post`` is looked up on Glimpse, never blindly re-sent."""

from __future__ import annotations

import asyncio
from typing import Any

from glimpse_agent.agent.context import AgentContext
from glimpse_agent.agent.outcome import Outcome
from glimpse_agent.agent.quota import Quota
from glimpse_agent.agent.reconcile import Reconciler
from glimpse_agent.agent.settle import commit_post
from glimpse_agent.errors import (
    BudgetExceeded,
    GlimpseAgentError,
    RateLimited,
    Rejected,
    ServiceError,
)
from glimpse_agent.imaging import ImageRequest, prepare_for_post
from glimpse_agent.ledger.records import PostIntent
from glimpse_agent.planner import IDEA_MEMORY, PastIdea, is_repeat, next_idea
from glimpse_agent.writing import CaptionRequest

#: After every image backend failed for a reason that passes (outage, 429, open breaker).
IMAGE_RETRY_SECONDS = 20 * 60.0


class Poster:
    """``Agent.post``. A post that may have gone out is handed to the reconciler at once."""

    def __init__(self, ctx: AgentContext, quota: Quota, reconciler: Reconciler) -> None:
        self.ctx = ctx
        self.quota = quota
        self.reconciler = reconciler

    async def post(self, slot_id: str | None = None) -> Outcome:
        """Make and publish one post: idea, image, caption, safety, intent, post, settle."""
        ctx = self.ctx
        ledger, writing, clock = ctx.ledger, ctx.writing, ctx.clock
        now = clock.now()
        slot_id = slot_id or f"adhoc/{now.isoformat()}"
        log = ctx.log.bind(job=slot_id, action="post")
        left = await self.quota.left(now)
        if left.get("posts", 0) <= 0 or left.get("generation", 0) <= 0:
            log.info("post_skipped", reason="post or generation quota used up", left=left)
            return Outcome("post", False, "quota used up")
        history = [
            PastIdea(p.topic, p.prompt, p.at, p.angle)
            for p in await ledger.ideas_since(now - IDEA_MEMORY)
        ]
        idea = next_idea(ctx.persona, history, now, seed=slot_id)
        recent_prompts = [h.prompt for h in history]
        prompt = await writing.image_prompt(idea.topic, idea.angle, recent_prompts)
        # The art style is in every prompt: only the subject and the angle can repeat.
        style = ctx.persona.art_style
        if is_repeat(prompt, history, now, common=style):
            prompt = await writing.image_prompt(idea.topic, idea.angle, [*recent_prompts, prompt])
            if is_repeat(prompt, history, now, common=style):
                log.warning("post_skipped", reason="could not find a fresh idea")
                return Outcome("post", False, "no fresh idea")
        if ctx.dry_run:
            # Generating is a write too (Glimpse's generator spends the day's generation quota
            # and may first PUT the BYOK settings; the others cost money): log it instead.
            log.info("dry_run_generate", prompt=prompt, backends=ctx.router.names)
            return await self._dry_run_post(log, idea.topic, prompt, list(idea.hashtags))
        # Actions are counted at the instant their request went out, which is before the
        # server's X-RateLimit-* answer was seen: counted later, the server's ``remaining`` (that
        # already includes the action) would be lowered by it a second time.
        generation_sent = clock.now()
        try:
            image = await ctx.router.generate(ImageRequest(prompt=prompt, persona=ctx.persona.name))
        except BudgetExceeded as exc:
            log.warning("post_skipped", reason=str(exc))
            await ledger.record_error("post", str(exc), now)
            return Outcome("post", False, str(exc))
        except ServiceError as exc:
            log.error("image_failed", error=str(exc))
            await ledger.record_error("imaging", str(exc), clock.now())
            wait = IMAGE_RETRY_SECONDS if exc.retryable else None
            return Outcome("post", False, f"image failed: {exc}", retry_after=wait)
        if image.backend == "glimpse":
            # Only Glimpse's own generator counts against its generation limits.
            await ledger.record_action("generation", generation_sent, ref=slot_id)
        caption = await writing.caption(
            CaptionRequest(
                topic=idea.topic,
                image_prompt=prompt,
                hashtags=list(idea.hashtags),
                image_url=image.url,
                image_bytes=image.data,
            )
        )
        if caption is None:
            log.warning("post_skipped", reason="no caption passed the safety filter")
            await ledger.record_error("caption", "no safe caption", clock.now())
            return Outcome("post", False, "no safe caption")
        text = with_attribution(
            caption.text, image.attribution, ctx.config.safety.caption_max_chars
        )
        ready = await asyncio.to_thread(prepare_for_post, image)
        intent = PostIntent(
            slot_id=slot_id,
            caption=text,
            prompt=prompt,
            topic=idea.topic,
            angle=idea.angle,
            backend=image.backend,
            model=image.model,
            cost_usd=image.cost_usd,
        )
        intent_id = await ledger.begin_intent("post", intent.to_doc(), clock.now())
        post_sent = clock.now()
        try:
            post = await ctx.glimpse.create_post(
                caption=text,
                image_url=ready.image_url,
                image_bytes=ready.data,
                mime_type=ready.mime_type if ready.data is not None else None,
                is_nsfw=ctx.persona.nsfw,
                generation_model=image.model or None,
                generation_prompt=prompt,
            )
        except (Rejected, RateLimited) as exc:
            # The server refused: it certainly did not post.
            await ledger.abandon_intent(intent_id, str(exc))
            await self.quota.note_failure("posts", exc)
            wait = (exc.retry_after or 60.0) if isinstance(exc, RateLimited) else None
            return Outcome("post", False, f"post refused: {exc}", retry_after=wait)
        except ServiceError as exc:
            # Timeout or 5xx: it may have posted. Look now; if Glimpse cannot tell us, the intent
            # stays open and the next start settles it — never a blind second post.
            await self.quota.note_failure("posts", exc)
            await self._reconcile_soon()
            return Outcome("post", False, f"post failed: {exc}")
        await commit_post(ledger, intent_id, post, intent, at=post_sent)
        await self.quota.flush_server_limits()
        log.info("posted", post_id=post.id, backend=image.backend, caption_source=caption.source)
        return Outcome("post", True, post_id=post.id)

    async def _dry_run_post(
        self, log: Any, topic: str, prompt: str, hashtags: list[str]
    ) -> Outcome:
        caption = await self.ctx.writing.caption(
            CaptionRequest(topic=topic, image_prompt=prompt, hashtags=hashtags)
        )
        if caption is None:
            log.warning("post_skipped", reason="no caption passed the safety filter")
            return Outcome("post", False, "no safe caption")
        log.info("dry_run_post", caption=caption.text, prompt=prompt, topic=topic)
        return Outcome("post", True, "dry run")

    async def _reconcile_soon(self) -> None:
        try:
            await self.reconciler.reconcile(abandon_missing=False)
        except GlimpseAgentError as exc:
            self.ctx.log.warning("reconcile_deferred", error=str(exc))


def with_attribution(caption: str, attribution: str | None, max_chars: int) -> str:
    """Append our own fixed attribution line (e.g. "powered by glif.app"), trimming the caption
    at a word boundary if the whole would pass the caption limit. The attribution is our text,
    not generated, so it is not run through the filter that refuses links."""
    if not attribution or attribution in caption:
        return caption
    room = max_chars - len(attribution) - 2
    if len(caption) > room:
        caption = caption[: max(0, room - 1)].rsplit(" ", 1)[0].rstrip() + "…"
    return f"{caption}\n\n{attribution}"
