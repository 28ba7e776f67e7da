"""``Poster``: making and publishing one post: idea, image prompt, image (router; or an image
kept from an earlier attempt), caption (chain + safety), write-ahead intent, ``create_post``,
settlement in one atomic ledger write.

Never a second post while an earlier one may still be going out: before anything else, open
post intents are settled (``Reconciler``); while one is uncertain the post waits for its
certainty point. A ``create_post`` that got no answer (timeout, 5xx, broken answer) is looked up
on Glimpse, never blindly re-sent. Generations are spent carefully: an image made but not posted
is kept (``ImageKeeper``) and posted by the next attempt, a lost answer from Glimpse's generator
counts as spent, and a 429 on generation blocks the bucket until the server's reset."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from glimpse_agent.agent.context import AgentContext
from glimpse_agent.agent.kept import KeptImage
from glimpse_agent.agent.outcome import Outcome
from glimpse_agent.agent.quota import Quota
from glimpse_agent.agent.reconcile import CERTAINTY_MARGIN, Reconciler, certain_at
from glimpse_agent.agent.settle import GENERATION, close_generation, commit_post
from glimpse_agent.errors import (
    BudgetExceeded,
    GlimpseAgentError,
    NoAnswer,
    RateLimited,
    Rejected,
    ServiceError,
    Unauthorized,
)
from glimpse_agent.imaging import GeneratedImage, ImageRequest, prepare_for_post
from glimpse_agent.imaging.base import Attempt, ImagingFailed
from glimpse_agent.ledger.records import PostIntent
from glimpse_agent.planner import IDEA_MEMORY, PastIdea, is_repeat, next_idea, post_buckets
from glimpse_agent.writing import CaptionRequest

#: After every image backend failed for a reason that passes (outage, 429, open breaker).
IMAGE_RETRY_SECONDS = 20 * 60.0
#: When Glimpse could not be asked whether an earlier post went out: ask again this much later.
LOOK_AGAIN_SECONDS = 5 * 60.0


#: Glimpse's own generator: the one backend whose images count against its generation limits.
GLIMPSE = "glimpse"


class Poster:
    """``Agent.post``. A post that may have gone out is handed to the reconciler at once."""

    def __init__(self, ctx: AgentContext, quota: Quota, reconciler: Reconciler) -> None:
        self.ctx = ctx
        self.quota = quota
        self.reconciler = reconciler

    async def post(self, slot_id: str | None = None) -> Outcome:
        """Make and publish one post: settle earlier ones, idea, image, caption, safety,
        intent, post, settle."""
        ctx = self.ctx
        ledger, writing, clock = ctx.ledger, ctx.writing, ctx.clock
        now = clock.now()
        slot_id = slot_id or f"adhoc/{now.isoformat()}"
        log = ctx.log.bind(job=slot_id, action="post")
        if not ctx.dry_run:
            waiting = await self._settle_earlier_posts(slot_id)
            if waiting is not None:
                return waiting
            now = clock.now()
        kept = None if ctx.dry_run else await self._kept()
        left = await self.quota.left(now)
        # A kept image is already made: it needs no generation; nor does a chain with another
        # backend than Glimpse's generator (it is skipped while its six a day are spent).
        order = ctx.config.images.order or ()
        needed = ("posts",) if kept is not None else post_buckets(order)
        avoid = frozenset({GLIMPSE}) if left.get("generation", 0) <= 0 else frozenset()
        if any(left.get(b, 0) <= 0 for b in needed):
            log.info("post_skipped", reason="post or generation quota used up", left=left)
            return Outcome("post", False, "quota used up", retry_after=await self._free_in(needed))
        if kept is not None:
            image, topic, angle = kept.image, kept.topic, kept.angle
            prompt, hashtags = kept.image.prompt, list(kept.hashtags)
            kept_key: str | None = kept.key
            log.info("kept_image_used", backend=image.backend, kept_at=kept.kept_at.isoformat())
        else:
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
                prompt = await writing.image_prompt(
                    idea.topic, idea.angle, [*recent_prompts, prompt]
                )
                if is_repeat(prompt, history, now, common=style):
                    log.warning("post_skipped", reason="could not find a fresh idea")
                    return Outcome("post", False, "no fresh idea")
            topic, angle, hashtags = idea.topic, idea.angle, list(idea.hashtags)
            if ctx.dry_run:
                # Generating is a write too (Glimpse's generator spends the day's generation
                # quota and may first PUT the BYOK settings; the others cost money): log it.
                log.info("dry_run_generate", prompt=prompt, backends=ctx.router.names)
                return await self._dry_run_post(log, topic, prompt, hashtags)
            made = await self._generate(log, slot_id, prompt, avoid)
            if isinstance(made, Outcome):
                return made
            image = made
            kept_key = await self._keep(image, topic, angle, hashtags)
        caption = await writing.caption(
            CaptionRequest(
                topic=topic,
                image_prompt=prompt,
                hashtags=hashtags,
                image_url=image.url,
                image_bytes=image.data,
            )
        )
        if caption is None:
            # The image stays kept: the next attempt posts it with a new caption.
            log.warning("post_skipped", reason="no caption passed the safety filter")
            await ledger.record_error("caption", "no safe caption", clock.now())
            return Outcome("post", False, "no safe caption")
        text = with_attribution(
            caption.text, image.attribution, ctx.config.safety.caption_max_chars
        )
        ready = await asyncio.to_thread(prepare_for_post, image)
        generation_model = image.model or None
        intent = PostIntent(
            slot_id=slot_id,
            caption=text,
            prompt=prompt,
            topic=topic,
            angle=angle,
            backend=image.backend,
            model=image.model,
            cost_usd=image.cost_usd,
            # Sent just after: Glimpse cannot be applying it past this plus a margin.
            deadline=clock.now() + ctx.glimpse_timeout,
            image_url=ready.image_url or "",
            is_nsfw=ctx.persona.nsfw,
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
                generation_model=generation_model,
                generation_prompt=prompt,
            )
        except (Rejected, RateLimited) as exc:
            # The server refused: it certainly did not post.
            await ledger.abandon_intent(intent_id, str(exc))
            await self.quota.note_failure("posts", exc)
            if isinstance(exc, Rejected) and not isinstance(exc, Unauthorized):
                # Refused for what it is (the image, the caption): never worth sending again.
                await self._discard(kept_key)
            wait = (exc.retry_after or 60.0) if isinstance(exc, RateLimited) else None
            return Outcome("post", False, f"post refused: {exc}", retry_after=wait)
        except ServiceError as exc:
            # No answer, a 5xx or an answer we cannot read: it may have posted. Look now; if
            # it is not there (yet), the slot comes back after the certainty point, when a
            # look decides — never a blind second post.
            await self.quota.note_failure("posts", exc)
            return await self._after_lost_answer(slot_id, intent_id, intent, exc)
        await commit_post(ledger, intent_id, post, intent, at=post_sent)
        await self._discard(kept_key)
        await self.quota.flush_server_limits()
        log.info("posted", post_id=post.id, backend=image.backend, caption_source=caption.source)
        return Outcome("post", True, post_id=post.id)

    # ------------------------------------------------------------------ certainty

    async def _settle_earlier_posts(self, slot_id: str) -> Outcome | None:
        """Settle the post intents still open; an Outcome if this post must wait (one may
        still be going out) or need not be made (it was this slot's, found on Glimpse)."""
        open_posts = await self.reconciler.open_posts()
        if not open_posts:
            return None
        now = self.ctx.clock.now()
        try:
            settled = await self.reconciler.reconcile()
        except ServiceError as exc:
            latest = max(certain_at(i, p, self.ctx.glimpse_timeout) for i, p in open_posts)
            wait = max((latest - now).total_seconds(), LOOK_AGAIN_SECONDS)
            self.ctx.log.warning("reconcile_deferred", error=str(exc), retry_in_s=wait)
            return Outcome(
                "post", False, f"an earlier post is not settled yet: {exc}", retry_after=wait
            )
        if slot_id in settled.found:
            return Outcome("post", True, "found on Glimpse", post_id=settled.found[slot_id])
        if settled.uncertain_until is not None:
            wait = max((settled.uncertain_until - now).total_seconds(), 60.0)
            return Outcome(
                "post",
                False,
                "an earlier post may still be going out",
                retry_after=wait,
            )
        return None

    async def _after_lost_answer(
        self, slot_id: str, intent_id: str, intent: PostIntent, exc: ServiceError
    ) -> Outcome:
        try:
            settled = await self.reconciler.reconcile(abandon_missing=False)
        except GlimpseAgentError as look_failed:
            self.ctx.log.warning("reconcile_deferred", error=str(look_failed))
        else:
            if slot_id in settled.found:
                self.ctx.log.info("posted", post_id=settled.found[slot_id], found=True)
                return Outcome("post", True, "found on Glimpse", post_id=settled.found[slot_id])
        assert intent.deadline is not None
        now = self.ctx.clock.now()
        until = intent.deadline + CERTAINTY_MARGIN
        wait = max((until - now).total_seconds(), 60.0)
        self.ctx.log.warning(
            "post_uncertain", intent=intent_id, error=str(exc), certain_at=until.isoformat()
        )
        return Outcome("post", False, f"post failed: {exc}", retry_after=wait)

    # ------------------------------------------------------------------ generations

    async def _generate(
        self, log: Any, slot_id: str, prompt: str, avoid: frozenset[str]
    ) -> GeneratedImage | Outcome:
        """One image from the router (never from the backends in ``avoid``: their quota is
        spent), with what the attempt spent written down. When Glimpse's generator may be
        asked, an intent is written first: a kill while its request is out then still counts
        the generation (at the next reconcile) instead of losing it."""
        ctx, ledger, clock = self.ctx, self.ctx.ledger, self.ctx.clock
        # Actions are counted at the instant their request went out, which is before the
        # server's X-RateLimit-* answer was seen: counted later, the server's ``remaining``
        # (that already includes the action) would be lowered by it a second time.
        generation_sent = clock.now()
        intent: str | None = None
        if GLIMPSE in ctx.router.names and GLIMPSE not in avoid:
            intent = await ledger.begin_intent(GENERATION, {"slot_id": slot_id}, generation_sent)
        try:
            request = ImageRequest(prompt=prompt, persona=ctx.persona.name, avoid=avoid)
            image = await ctx.router.generate(request)
        except BudgetExceeded as exc:
            await self._close_generation(intent, [], generation_sent, slot_id)
            log.warning("post_skipped", reason=str(exc))
            await ledger.record_error("post", str(exc), clock.now())
            return Outcome("post", False, str(exc))
        except ServiceError as exc:
            attempts = exc.attempts if isinstance(exc, ImagingFailed) else []
            await self._close_generation(intent, attempts, generation_sent, slot_id)
            blocked_until = await self._note_limits(attempts)
            log.error("image_failed", error=str(exc))
            await ledger.record_error("imaging", str(exc), clock.now())
            wait = IMAGE_RETRY_SECONDS if exc.retryable else None
            if wait is not None and blocked_until is not None:
                # Never into the block: the next try comes once the server's wait is over.
                wait = max(wait, (blocked_until - clock.now()).total_seconds())
            return Outcome("post", False, f"image failed: {exc}", retry_after=wait)
        attempts = list(ctx.router.last_attempts)
        await self._close_generation(intent, attempts, generation_sent, slot_id)
        await self._note_limits([a for a in attempts if a.outcome != "ok"])
        return image

    async def _close_generation(
        self, intent: str | None, attempts: list[Attempt], sent: datetime, slot_id: str
    ) -> None:
        """Close the generation intent: spent if Glimpse's generator made an image or may have
        (its answer was lost: Glimpse may have made and counted it)."""
        if intent is None:
            return
        spent = any(
            a.backend == GLIMPSE
            and (a.outcome in ("ok", "deadline") or isinstance(a.cause, NoAnswer))
            for a in attempts
        )
        await self.ctx.ledger.run(close_generation, intent, spent=spent, at=sent, slot_id=slot_id)

    async def _note_limits(self, attempts: list[Attempt]) -> datetime | None:
        """Write down what Glimpse's generator said of its limits: a 429 blocks the bucket until
        its reset. Returns until when generation is blocked, if it is."""
        blocked: datetime | None = None
        for attempt in attempts:
            cause = attempt.cause
            if attempt.backend == GLIMPSE and isinstance(cause, RateLimited):
                await self.quota.note_failure("generation", cause)
                until = await self._blocked_until(cause.bucket or "generation")
                if until is not None and (blocked is None or until > blocked):
                    blocked = until
        await self.quota.flush_server_limits()
        return blocked

    async def _blocked_until(self, bucket: str) -> datetime | None:
        return (await self.ctx.ledger.usage(bucket)).blocked_until

    async def _free_in(self, buckets: tuple[str, ...]) -> float | None:
        """Seconds until every one of ``buckets`` allows one more action, or None if the caps
        never will."""
        ctx = self.ctx
        now = ctx.clock.now()
        latest = now
        for bucket in buckets:
            free = await ctx.ledger.next_free(bucket, now, ctx.persona)
            if free is None:
                return None
            latest = max(latest, free)
        return max((latest - now).total_seconds(), 60.0)

    # ------------------------------------------------------------------ kept images

    async def _kept(self) -> KeptImage | None:
        keeper = self.ctx.keeper
        return None if keeper is None else await asyncio.to_thread(keeper.oldest)

    async def _keep(
        self, image: GeneratedImage, topic: str, angle: str, hashtags: list[str]
    ) -> str | None:
        keeper = self.ctx.keeper
        if keeper is None:
            return None
        return await asyncio.to_thread(
            keeper.keep, image, topic=topic, angle=angle, hashtags=tuple(hashtags)
        )

    async def _discard(self, key: str | None) -> None:
        if self.ctx.keeper is not None and key:
            await asyncio.to_thread(self.ctx.keeper.discard, key)

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
