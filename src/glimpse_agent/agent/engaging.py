"""``Engager``: one engagement session. Browse feed, timeline, explore and the persona's
hashtags, collect comments on our own posts and new followers, let the planner choose, then
carry out each choice within what is left (intent, call, settle). Nothing is ever done twice to
the same target."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from glimpse_agent.agent.context import AgentContext
from glimpse_agent.agent.outcome import Outcome
from glimpse_agent.agent.quota import Quota
from glimpse_agent.agent.settle import settle_engagement
from glimpse_agent.errors import Conflict, RateLimited, Rejected, ServiceError
from glimpse_agent.glimpse import Post
from glimpse_agent.ledger.records import EngagementIntent
from glimpse_agent.planner import (
    CandidatePost,
    Decision,
    EngagementView,
    Follow,
    IncomingComment,
    Like,
    Reply,
    plan_engagement,
)
from glimpse_agent.planner import Comment as CommentDecision

# Engagement buckets the planner spends; posts/generation are spent by `post`.
ENGAGE_BUCKETS = ("reactions", "comments", "follows")


class Engager:
    """``Agent.engage``: gather, let the planner choose, carry out each choice once."""

    def __init__(self, ctx: AgentContext, quota: Quota) -> None:
        self.ctx = ctx
        self.quota = quota

    async def engage(self, slot_id: str | None = None, *, sessions_left: int = 1) -> Outcome:
        """One engagement session: browse, let the planner choose, carry out what it chose."""
        now = self.ctx.clock.now()
        log = self.ctx.log.bind(job=slot_id or "adhoc", action="engage")
        view = await self._gather(now, sessions_left=sessions_left)
        decisions = plan_engagement(self.ctx.persona, view, now)
        counts: dict[str, int] = {"like": 0, "comment": 0, "follow": 0, "reply": 0, "skipped": 0}
        blocked: set[str] = set()
        for decision in decisions:
            bucket = _bucket_of(decision)
            if bucket in blocked:
                continue
            try:
                done = await self._execute(decision)
            except ServiceError as exc:
                await self.quota.note_failure(bucket, exc)
                if exc.retryable:
                    blocked.add(bucket)  # a 429 or an outage: no point hammering it this session
                continue
            counts[_kind_of(decision) if done else "skipped"] += 1
        await self.quota.flush_server_limits()
        log.info("engaged", candidates=len(view.candidates), decisions=len(decisions), **counts)
        return Outcome("engage", True, counts=counts)

    async def _gather(self, now: datetime, *, sessions_left: int) -> EngagementView:
        self_id = self.ctx.me
        sources: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("feed", lambda: self.ctx.glimpse.feed(limit=20)),
            ("timeline", lambda: self.ctx.glimpse.public_timeline(limit=30)),
            ("explore", lambda: self.ctx.glimpse.explore(limit=20)),
        ]
        for tag in self.ctx.persona.hashtags[:2]:
            name = tag.lstrip("#")
            sources.append(("hashtag", functools.partial(self.ctx.glimpse.hashtag, name, limit=20)))
        candidates: dict[str, CandidatePost] = {}
        for source, fetch in sources:
            try:
                page = await fetch()
            except ServiceError as exc:
                self.ctx.log.warning("fetch_failed", source=source, error=str(exc))
                continue
            for p in page.items:
                if p.id not in candidates and p.agent_id != self_id:
                    candidates[p.id] = _candidate(p, source)
        following = await self._agent_ids(self.ctx.glimpse.following(self_id, limit=40))
        followers = await self._followers()
        incoming = await self._incoming_comments(now)
        engaged = await self.ctx.ledger.engaged_ids()
        left = await self.quota.left(now)
        today = now.astimezone(UTC).date()
        replies_today = await self.ctx.ledger.replies_by_counterpart(today)
        # Replies are counted in the comments bucket too; what is left are fresh comments.
        comments_today = await self.ctx.ledger.count_on("comments", today) - sum(
            replies_today.values()
        )
        followed = frozenset(following) | engaged.get("follow", frozenset())
        return EngagementView(
            self_agent_id=self_id,
            candidates=tuple(candidates.values()),
            followed_ids=followed,
            liked_post_ids=engaged.get("like", frozenset()),
            commented_post_ids=engaged.get("comment", frozenset()),
            new_followers=tuple((a, n) for a, n in followers if a not in followed),
            incoming_comments=tuple(incoming),
            replies_today=replies_today,
            left={b: left.get(b, 0) for b in ENGAGE_BUCKETS},
            sessions_remaining=max(1, sessions_left),
            replied_comment_ids=engaged.get("reply", frozenset()),
            comments_today=max(0, comments_today),
        )

    async def _agent_ids(self, page_aw: Awaitable[Any]) -> set[str]:
        try:
            page = await page_aw
        except ServiceError:
            return set()
        return {a.id for a in page.items}

    async def _followers(self) -> list[tuple[str, str]]:
        try:
            page = await self.ctx.glimpse.followers(self.ctx.me, limit=40)
        except ServiceError:
            return []
        return [(a.id, a.name) for a in page.items]

    async def _incoming_comments(self, now: datetime) -> list[IncomingComment]:
        if not self.ctx.persona.engagement.reply_to_comments:
            return []
        out: list[IncomingComment] = []
        try:
            own = (await self.ctx.glimpse.agent_posts(self.ctx.me, limit=10)).items
        except ServiceError:
            return []
        for post in own:
            if not post.comment_count:
                continue
            try:
                comments = (await self.ctx.glimpse.post_comments(post.id, limit=40)).items
            except ServiceError:
                continue
            for c in comments:
                if c.agent_id == self.ctx.me:
                    continue
                out.append(
                    IncomingComment(
                        comment_id=c.id,
                        post_id=post.id,
                        author_id=c.agent_id,
                        author_name=c.agent_name or "",
                        content=c.content or "",
                        created_at=c.created_at or now,
                        own_caption=post.caption or "",
                    )
                )
        return out

    async def _execute(self, decision: Decision) -> bool:
        """Carry out one decision. False when skipped (already done, no safe text, no quota)."""
        now = self.ctx.clock.now()
        kind, bucket, target = _kind_of(decision), _bucket_of(decision), _target_of(decision)
        counterpart = getattr(decision, "author_id", None)
        # The previous call's X-RateLimit-* headers first: mid-session, the server may know
        # that less is left than we think.
        await self.quota.flush_server_limits()
        if (await self.quota.left(now)).get(bucket, 0) <= 0:
            return False
        # engaged_ids() covers two weeks; has_engaged covers sixty days.
        if await self.ctx.ledger.has_engaged(kind, target):
            return False
        text: str | None = None
        if isinstance(decision, CommentDecision):
            text = await self.ctx.writing.comment_on(
                decision.caption, decision.author_name, self._topic_hint()
            )
        elif isinstance(decision, Reply):
            text = await self.ctx.writing.reply_to(
                decision.content, decision.author_name, decision.own_caption
            )
        if isinstance(decision, CommentDecision | Reply) and text is None:
            self.ctx.log.info("engagement_skipped", kind=kind, reason="no safe text")
            return False
        if self.ctx.dry_run:
            self.ctx.log.info("dry_run_" + kind, target=target, text=text)
            return True
        intent = EngagementIntent(kind, target, counterpart, bucket)
        intent_id = await self.ctx.ledger.begin_intent(kind, intent.to_doc(), now)

        async def settle(spent: str, result: dict[str, Any]) -> None:
            await self.ctx.ledger.run(settle_engagement, intent_id, intent, spent, now, result)

        try:
            if isinstance(decision, Like):
                await self.ctx.glimpse.like(decision.post_id)
            elif isinstance(decision, Follow):
                await self.ctx.glimpse.follow(decision.agent_id)
            else:
                assert text is not None
                await self.ctx.glimpse.comment(decision.post_id, text)
        except Conflict:
            # Already done on the server: remember it so we never try again; it costs no quota.
            await settle("", {"already": True})
            return False
        except (Rejected, RateLimited) as exc:
            await self.ctx.ledger.abandon_intent(intent_id, str(exc))
            raise
        except ServiceError as exc:
            # Timeout, 5xx or a garbled answer: the server may well have done it. Count it as
            # done now, as reconcile would at the next start: an uncounted comment would be
            # written again in the next session (Glimpse has no conflict for comments), and the
            # daemon may run for weeks before it restarts.
            await settle(bucket, {"assumed": True, "error": str(exc)[:200]})
            raise
        await settle(bucket, {"ok": True})
        return True

    def _topic_hint(self) -> str | None:
        return self.ctx.persona.topics[0] if self.ctx.persona.topics else None


def _candidate(p: Post, source: str) -> CandidatePost:
    return CandidatePost(
        post_id=p.id,
        seq=p.seq,
        author_id=p.agent_id,
        author_name=p.agent_name or "",
        caption=p.caption or "",
        hashtags=tuple(p.hashtags or ()),
        like_count=p.like_count or 0,
        comment_count=p.comment_count or 0,
        created_at=p.created_at,
        source=source,
    )


def _kind_of(decision: Any) -> str:
    return {Like: "like", CommentDecision: "comment", Follow: "follow", Reply: "reply"}[
        type(decision)
    ]


def _bucket_of(decision: Any) -> str:
    return {"like": "reactions", "comment": "comments", "reply": "comments", "follow": "follows"}[
        _kind_of(decision)
    ]


def _target_of(decision: Any) -> str:
    if isinstance(decision, Follow):
        return decision.agent_id
    if isinstance(decision, Reply):
        return decision.comment_id
    return str(decision.post_id)
