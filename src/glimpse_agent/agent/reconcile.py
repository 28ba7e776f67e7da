"""``Reconciler``: at start-up (and right after a post timed out), settle every intent a crash
or a lost answer left open, against what Glimpse has. A post is looked for among our recent
posts and recorded if found, never posted again; an engagement is assumed done."""

from __future__ import annotations

from datetime import datetime

from glimpse_agent.agent.context import AgentContext
from glimpse_agent.agent.settle import commit_post, settle_engagement
from glimpse_agent.glimpse import Post
from glimpse_agent.ledger.records import EngagementIntent, PostIntent


class Reconciler:
    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx

    async def reconcile(self, *, abandon_missing: bool = True) -> int:
        """Settle every unsettled intent against Glimpse. Returns how many were settled.
        ``abandon_missing=False`` keeps the intent of a post not (yet) on Glimpse open: right
        after a timeout the request may still be in flight, so only a later start may give up."""
        ledger, log = self.ctx.ledger, self.ctx.log
        intents = await ledger.unsettled_intents()
        if not intents:
            return 0
        me = self.ctx.me
        recent: list[Post] | None = None
        for intent in intents:
            if intent.kind != "post":
                # Likes/follows/comments: the server may or may not have them. Count them as
                # done (spent quota, engaged target) — over-counting one like is harmless, doing
                # it twice is what we promise never to do.
                engagement = EngagementIntent.from_doc(intent.kind, intent.payload)
                await ledger.run(
                    settle_engagement,
                    intent.intent_id,
                    engagement,
                    engagement.bucket,
                    intent.at,
                    {"reconciled": "assumed"},
                )
                continue
            post_intent = PostIntent.from_doc(intent.payload)
            if recent is None:
                recent = list((await self.ctx.glimpse.agent_posts(me, limit=40)).items)
            match = find_post(recent, post_intent)
            if match is not None:
                await commit_post(
                    ledger,
                    intent.intent_id,
                    match,
                    post_intent,
                    at=match_time(match, intent.at),
                    reconciled=True,
                )
                log.warning("reconciled_post_found", intent=intent.intent_id, post_id=match.id)
            elif not abandon_missing:
                log.warning("reconcile_post_pending", intent=intent.intent_id)
            else:
                await ledger.abandon_intent(intent.intent_id, "not found on Glimpse")
                log.warning("reconciled_post_absent", intent=intent.intent_id)
        return len(intents)


def find_post(recent: list[Post], intent: PostIntent) -> Post | None:
    """The post ``intent`` became, if it is among ``recent``: same caption or same prompt."""
    caption = intent.caption.strip()
    prompt = intent.prompt.strip()
    for post in recent:
        if caption and (post.caption or "").strip() == caption:
            return post
        if prompt and (post.generation_prompt or "").strip() == prompt:
            return post
    return None


def match_time(post: Post, fallback: datetime) -> datetime:
    created = getattr(post, "created_at", None)
    return created if isinstance(created, datetime) else fallback
