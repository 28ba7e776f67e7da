"""Executes the planner's decisions against the services, recording everything in the ledger.

One post:   idea -> image prompt -> image (router) -> caption (chain + safety) -> intent ->
            create_post -> settle.
One session: fetch feed/timeline/explore/hashtags + own posts' comments + followers -> planner ->
            for each decision: budget check -> intent -> call -> settle/record.

Every write to Glimpse is preceded by a durable write-ahead intent, so a crash between "the POST
succeeded" and "we recorded it" is found at the next start (``reconcile``) and never produces a
second post. ``dry_run`` turns every write into a log line.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from glimpse_agent.clock import Clock
from glimpse_agent.config import AgentConfig
from glimpse_agent.errors import (
    BudgetExceeded,
    Conflict,
    GlimpseAgentError,
    RateLimited,
    Rejected,
    ServiceError,
)
from glimpse_agent.glimpse import GlimpseClient, Post
from glimpse_agent.imaging import ImageRequest, ImageRouter, prepare_for_post
from glimpse_agent.ledger import AsyncLedger, OwnPost
from glimpse_agent.logs import get_logger
from glimpse_agent.persona import Persona
from glimpse_agent.planner import (
    CandidatePost,
    Comment as CommentDecision,
    DayPlan,
    EngagementView,
    Follow,
    IncomingComment,
    Like,
    PastIdea,
    Reply,
    Slot,
    is_repeat,
    next_idea,
    next_local_midnight,
    plan_day,
    plan_engagement,
)
from glimpse_agent.writing import CaptionRequest, Writing

T = TypeVar("T")
IDEA_MEMORY = timedelta(days=30)
# Engagement buckets the planner spends; posts/generation are spent by `post`.
ENGAGE_BUCKETS = ("reactions", "comments", "follows")


@dataclass
class Outcome:
    """What one action did, for logs, `once` and the simulation summary."""

    kind: str
    ok: bool = True
    detail: str = ""
    post_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


class Agent:
    """One persona's hands: it does what the planner decided, within what the ledger allows."""

    def __init__(
        self,
        config: AgentConfig,
        persona: Persona,
        *,
        glimpse: GlimpseClient,
        ledger: AsyncLedger,
        router: ImageRouter,
        writing: Writing,
        clock: Clock,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        self.persona = persona
        self.glimpse = glimpse
        self.ledger = ledger
        self.router = router
        self.writing = writing
        self.clock = clock
        self.dry_run = dry_run
        self.self_id: str | None = None
        self.log = get_logger("glimpse_agent.agent", persona=persona.name)

    # ------------------------------------------------------------------ lifecycle

    async def startup(self) -> None:
        """Learn who we are, then settle whatever a crash left half-done — before anything else."""
        me = await self.glimpse.me()
        self.self_id = me.id
        await self.reconcile()

    async def reconcile(self) -> int:
        """Settle every unsettled intent against Glimpse. Returns how many were settled."""
        intents = await self.ledger.unsettled_intents()
        if not intents:
            return 0
        assert self.self_id is not None
        recent = (await self.glimpse.agent_posts(self.self_id, limit=40)).items
        settled = 0
        for intent in intents:
            payload = intent.payload
            if intent.kind == "post":
                match = _find_post(recent, payload, since=intent.at)
                if match is not None:
                    await self._record_post(match, payload, at=match_time(match, intent.at))
                    await self.ledger.settle_intent(intent.intent_id, {"post_id": match.id,
                                                                       "reconciled": True})
                    self.log.warning("reconciled_post_found", intent=intent.intent_id,
                                     post_id=match.id)
                else:
                    await self.ledger.abandon_intent(intent.intent_id, "not found on Glimpse")
                    self.log.warning("reconciled_post_absent", intent=intent.intent_id)
            else:
                # Likes/follows/comments: re-doing one is harmless (Glimpse answers 409) and
                # skipping one costs little; mark it engaged so it is not tried again today.
                target = str(payload.get("target", ""))
                if target:
                    await self.ledger.mark_engaged(intent.kind, target, intent.at,
                                                   counterpart=payload.get("counterpart"))
                await self.ledger.settle_intent(intent.intent_id, {"reconciled": "assumed"})
            settled += 1
        return settled

    # ------------------------------------------------------------------ planning

    async def budgets(self, now: datetime) -> dict[str, int]:
        return await self.ledger.remaining_all(now, self.persona)

    async def plan_day(self, now: datetime) -> tuple[DayPlan, datetime]:
        zone = self.persona.zone
        local_day = now.astimezone(zone).date()
        done = await self.ledger.done_slots(local_day.isoformat())
        posted_today = sum(1 for s in done if "/post/" in s)
        left = await self.budgets(now)
        allowed = max(0, min(self.persona.posts_per_day,
                             posted_today + left.get("posts", 0),
                             posted_today + left.get("generation", 0)))
        plan = plan_day(self.persona, local_day, posts_allowed=allowed,
                        jitter_minutes=self.config.daemon.jitter_minutes,
                        done_slot_ids=frozenset(done), now=now,
                        grace_minutes=self.config.daemon.misfire_grace_minutes)
        await self.ledger.save_plan(local_day.isoformat(), _plan_json(plan))
        return plan, next_local_midnight(self.persona, now)

    async def run_slot(self, slot: Slot) -> Outcome:
        log = self.log.bind(job=slot.slot_id, action=slot.kind)
        if await self.ledger.slot_done(slot.slot_id):
            log.info("slot_already_done")
            return Outcome(slot.kind, True, "already done")
        outcome = await (self.post(slot.slot_id) if slot.kind == "post"
                         else self.engage(slot.slot_id))
        if outcome.ok or slot.kind == "engage":
            await self.ledger.mark_slot_done(slot.slot_id, self.clock.now())
        return outcome

    # ------------------------------------------------------------------ posting

    async def post(self, slot_id: str | None = None) -> Outcome:
        now = self.clock.now()
        slot_id = slot_id or f"adhoc/{now.isoformat()}"
        log = self.log.bind(job=slot_id, action="post")
        left = await self.budgets(now)
        if left.get("posts", 0) <= 0:
            log.info("post_skipped", reason="post quota used up")
            return Outcome("post", False, "post quota used up")
        history = [PastIdea(p.topic, p.prompt, p.at)
                   for p in await self.ledger.prompts_since(now - IDEA_MEMORY)]
        idea = next_idea(self.persona, history, now, seed=slot_id)
        recent_prompts = [h.prompt for h in history]
        prompt = await self.writing.image_prompt(idea.topic, idea.angle, recent_prompts)
        if is_repeat(prompt, history, now):
            prompt = await self.writing.image_prompt(idea.topic, idea.angle,
                                                     [*recent_prompts, prompt])
            if is_repeat(prompt, history, now):
                log.warning("post_skipped", reason="could not find a fresh idea")
                return Outcome("post", False, "no fresh idea")
        try:
            image = await self.router.generate(ImageRequest(prompt=prompt,
                                                            persona=self.persona.name))
        except BudgetExceeded as exc:
            log.warning("post_skipped", reason=str(exc))
            await self.ledger.record_error("post", str(exc), now)
            return Outcome("post", False, str(exc))
        except ServiceError as exc:
            log.error("image_failed", error=str(exc))
            await self.ledger.record_error("imaging", str(exc), self.clock.now())
            return Outcome("post", False, f"image failed: {exc}")
        if image.backend == "glimpse":
            await self.ledger.record_action("generation", self.clock.now(), ref=slot_id)
        caption = await self.writing.caption(CaptionRequest(
            topic=idea.topic, image_prompt=prompt, hashtags=list(idea.hashtags),
            image_url=image.url, image_bytes=image.data))
        if caption is None:
            log.warning("post_skipped", reason="no caption passed the safety filter")
            await self.ledger.record_error("caption", "no safe caption", self.clock.now())
            return Outcome("post", False, "no safe caption")
        text = caption.text
        if image.attribution and image.attribution not in text:
            text = f"{text}\n\n{image.attribution}"
        ready = prepare_for_post(image)
        payload = {"slot_id": slot_id, "caption": text, "prompt": prompt, "topic": idea.topic,
                   "backend": image.backend, "model": image.model, "cost_usd": image.cost_usd}
        intent = await self.ledger.begin_intent("post", payload, self.clock.now())
        if self.dry_run:
            log.info("dry_run_post", caption=text, prompt=prompt, backend=image.backend)
            await self.ledger.abandon_intent(intent, "dry run")
            return Outcome("post", True, "dry run")
        try:
            post = await self.glimpse.create_post(
                caption=text, image_url=ready.image_url, image_bytes=ready.data,
                mime_type=ready.mime_type, is_nsfw=self.persona.nsfw,
                generation_model=image.model, generation_prompt=prompt)
        except ServiceError as exc:
            await self._note_failure("posts", exc)
            if isinstance(exc, Rejected | RateLimited):
                # The server refused: it certainly did not post.
                await self.ledger.abandon_intent(intent, str(exc))
            # Otherwise (timeout, 5xx) it may have posted: leave the intent for reconcile.
            else:
                await self.reconcile_later(intent)
            return Outcome("post", False, f"post failed: {exc}")
        await self._record_post(post, payload, at=self.clock.now())
        await self.ledger.settle_intent(intent, {"post_id": post.id})
        self._note_limits()
        log.info("posted", post_id=post.id, backend=image.backend, caption_source=caption.source)
        return Outcome("post", True, post_id=post.id)

    async def reconcile_later(self, intent_id: str) -> None:
        """A write whose outcome is unknown: try to settle it now; if that fails, at next start."""
        try:
            await self.reconcile()
        except GlimpseAgentError as exc:
            self.log.warning("reconcile_deferred", intent=intent_id, error=str(exc))

    async def _record_post(self, post: Post, payload: dict[str, Any], *, at: datetime) -> None:
        await self.ledger.add_post(OwnPost(
            post_id=post.id, seq=post.seq, created_at=at, prompt=str(payload.get("prompt", "")),
            topic=str(payload.get("topic", "")), caption=str(payload.get("caption", "")),
            backend=str(payload.get("backend", "")), model=str(payload.get("model") or ""),
            cost_usd=float(payload.get("cost_usd") or 0.0),
            slot_id=str(payload.get("slot_id", ""))))
        await self.ledger.record_action("posts", at, ref=post.id)
        slot_id = payload.get("slot_id")
        if slot_id:
            await self.ledger.mark_slot_done(str(slot_id), at)

    # ------------------------------------------------------------------ engagement

    async def engage(self, slot_id: str | None = None, *, sessions_left: int = 1) -> Outcome:
        now = self.clock.now()
        log = self.log.bind(job=slot_id or "adhoc", action="engage")
        assert self.self_id is not None
        view = await self._gather(now, sessions_left=sessions_left, slot_id=slot_id)
        decisions = plan_engagement(self.persona, view, now)
        counts: dict[str, int] = {"like": 0, "comment": 0, "follow": 0, "reply": 0,
                                  "skipped": 0}
        blocked: set[str] = set()
        for decision in decisions:
            bucket = _bucket_of(decision)
            if bucket in blocked:
                continue
            try:
                done = await self._execute(decision)
            except RateLimited as exc:
                blocked.add(bucket)
                await self._note_failure(bucket, exc)
                continue
            except ServiceError as exc:
                await self._note_failure(bucket, exc)
                if exc.retryable:
                    blocked.add(bucket)
                continue
            counts[_kind_of(decision) if done else "skipped"] += 1
        self._note_limits()
        log.info("engaged", **counts)
        return Outcome("engage", True, counts=counts)

    async def _gather(self, now: datetime, *, sessions_left: int, slot_id: str | None
                      ) -> EngagementView:
        assert self.self_id is not None
        sources: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("feed", lambda: self.glimpse.feed(limit=20)),
            ("timeline", lambda: self.glimpse.public_timeline(limit=30)),
            ("explore", lambda: self.glimpse.explore(limit=20)),
        ]
        for tag in self.persona.hashtags[:2]:
            sources.append(("hashtag", lambda t=tag: self.glimpse.hashtag(t.lstrip("#"), limit=20)))
        candidates: dict[str, CandidatePost] = {}
        for source, fetch in sources:
            try:
                page = await fetch()
            except ServiceError as exc:
                self.log.warning("fetch_failed", source=source, error=str(exc))
                continue
            for p in page.items:
                if p.id not in candidates:
                    candidates[p.id] = _candidate(p, source)
        following = await self._ids(self.glimpse.following(self.self_id, limit=40))
        followers = await self._followers()
        incoming = await self._incoming_comments(now)
        day = now.astimezone(UTC).date()
        engaged = await self.ledger.engaged_ids()
        left = await self.budgets(now)
        replies_today = await self.ledger.replies_by_counterpart(day)
        return EngagementView(
            self_agent_id=self.self_id,
            candidates=tuple(candidates.values()),
            followed_ids=frozenset(following) | engaged.get("follow", frozenset()),
            liked_post_ids=engaged.get("like", frozenset()),
            commented_post_ids=engaged.get("comment", frozenset()),
            new_followers=tuple((a, n) for a, n in followers
                                if a not in following and a not in engaged.get("follow", ())),
            incoming_comments=tuple(c for c in incoming
                                    if c.comment_id not in engaged.get("reply", ())),
            replies_today=replies_today,
            left={b: left.get(b, 0) for b in ENGAGE_BUCKETS},
            sessions_remaining=max(1, sessions_left),
        )

    async def _ids(self, page_aw: Awaitable[Any]) -> set[str]:
        try:
            page = await page_aw
        except ServiceError:
            return set()
        return {a.id for a in page.items}

    async def _followers(self) -> list[tuple[str, str]]:
        assert self.self_id is not None
        try:
            page = await self.glimpse.followers(self.self_id, limit=40)
        except ServiceError:
            return []
        return [(a.id, a.name) for a in page.items]

    async def _incoming_comments(self, now: datetime) -> list[IncomingComment]:
        assert self.self_id is not None
        if not self.persona.engagement.reply_to_comments:
            return []
        out: list[IncomingComment] = []
        try:
            own = (await self.glimpse.agent_posts(self.self_id, limit=10)).items
        except ServiceError:
            return []
        for post in own:
            if not post.comment_count:
                continue
            try:
                comments = (await self.glimpse.post_comments(post.id, limit=40)).items
            except ServiceError:
                continue
            for c in comments:
                if c.agent_id == self.self_id:
                    continue
                out.append(IncomingComment(
                    comment_id=c.id, post_id=post.id, author_id=c.agent_id,
                    author_name=c.agent_name or "", content=c.content,
                    created_at=c.created_at or now, own_caption=post.caption or ""))
        return out

    async def _execute(self, decision: Any) -> bool:
        """Carry out one decision. Returns False when it was skipped (safety, dry-run...)."""
        now = self.clock.now()
        kind = _kind_of(decision)
        bucket = _bucket_of(decision)
        if (await self.budgets(now)).get(bucket, 0) <= 0:
            return False
        text: str | None = None
        if isinstance(decision, CommentDecision):
            text = await self.writing.comment_on(decision.caption, decision.author_name,
                                                 self._topic_hint())
        elif isinstance(decision, Reply):
            text = await self.writing.reply_to(decision.content, decision.author_name,
                                               decision.own_caption)
        if isinstance(decision, CommentDecision | Reply) and text is None:
            self.log.info("engagement_skipped", kind=kind, reason="no safe text")
            return False
        target = _target_of(decision)
        counterpart = getattr(decision, "author_id", None)
        payload = {"target": target, "counterpart": counterpart, "text": text}
        intent = await self.ledger.begin_intent(kind, payload, now)
        if self.dry_run:
            self.log.info("dry_run_" + kind, target=target, text=text)
            await self.ledger.abandon_intent(intent, "dry run")
            return True
        try:
            if isinstance(decision, Like):
                await self.glimpse.like(decision.post_id)
            elif isinstance(decision, Follow):
                await self.glimpse.follow(decision.agent_id)
            elif isinstance(decision, CommentDecision):
                assert text is not None
                await self.glimpse.comment(decision.post_id, text)
            else:
                assert text is not None and isinstance(decision, Reply)
                await self.glimpse.comment(decision.post_id, text)
        except Conflict:
            # Already done on the server: remember it, spend nothing.
            await self.ledger.mark_engaged(kind, target, now, counterpart=counterpart)
            await self.ledger.settle_intent(intent, {"already": True})
            return False
        except (Rejected, RateLimited) as exc:
            await self.ledger.abandon_intent(intent, str(exc))
            raise
        except ServiceError:
            raise  # outcome unknown: the intent stays for reconcile
        at = self.clock.now()
        await self.ledger.record_action(bucket, at, ref=target)
        await self.ledger.mark_engaged(kind, target, at, counterpart=counterpart)
        await self.ledger.settle_intent(intent, {"ok": True})
        return True

    def _topic_hint(self) -> str | None:
        return self.persona.topics[0] if self.persona.topics else None

    # ------------------------------------------------------------------ upkeep

    async def heartbeat(self) -> None:
        if self.dry_run:
            return
        try:
            await self.glimpse.heartbeat()
        except ServiceError as exc:
            self.log.warning("heartbeat_failed", error=str(exc))

    async def _note_failure(self, bucket: str, exc: ServiceError) -> None:
        now = self.clock.now()
        if isinstance(exc, RateLimited):
            until = now + timedelta(seconds=exc.retry_after or 60)
            await self.ledger.note_rate_limited(exc.bucket or bucket, until)
        await self.ledger.record_error(bucket, str(exc), now)
        self.log.warning("action_failed", bucket=bucket, error=str(exc),
                         error_type=type(exc).__name__)

    def _note_limits(self) -> None:
        """Feed X-RateLimit-* headers into the ledger so the server's view tightens ours."""
        infos = dict(getattr(self.glimpse, "rate_limits", {}) or {})
        if infos:
            asyncio.ensure_future(self._store_limits(infos))

    async def _store_limits(self, infos: dict[str, Any]) -> None:
        now = self.clock.now()
        for bucket, info in infos.items():
            if bucket in {"read", ""}:
                continue
            await self.ledger.note_server_limit(bucket, info.limit, info.remaining, info.reset, now)


# ---------------------------------------------------------------------- helpers


def _plan_json(plan: DayPlan) -> dict[str, Any]:
    return {"local_day": plan.local_day.isoformat(),
            "slots": [{"slot_id": s.slot_id, "kind": s.kind, "at": s.at.isoformat()}
                      for s in plan.slots]}


def _find_post(recent: list[Post], payload: dict[str, Any], *, since: datetime) -> Post | None:
    caption = str(payload.get("caption", "")).strip()
    prompt = str(payload.get("prompt", "")).strip()
    for post in recent:
        if caption and (post.caption or "").strip() == caption:
            return post
        if prompt and (post.generation_prompt or "").strip() == prompt:
            return post
    return None


def match_time(post: Post, fallback: datetime) -> datetime:
    created = getattr(post, "created_at", None)
    return created if isinstance(created, datetime) else fallback


def _candidate(p: Post, source: str) -> CandidatePost:
    return CandidatePost(
        post_id=p.id, seq=p.seq, author_id=p.agent_id, author_name=p.agent_name or "",
        caption=p.caption or "", hashtags=tuple(p.hashtags or ()), like_count=p.like_count or 0,
        comment_count=p.comment_count or 0, created_at=p.created_at, source=source)


def _kind_of(decision: Any) -> str:
    return {Like: "like", CommentDecision: "comment", Follow: "follow", Reply: "reply"}[
        type(decision)]


def _bucket_of(decision: Any) -> str:
    return {"like": "reactions", "comment": "comments", "reply": "comments",
            "follow": "follows"}[_kind_of(decision)]


def _target_of(decision: Any) -> str:
    if isinstance(decision, Follow):
        return decision.agent_id
    if isinstance(decision, Reply):
        return decision.comment_id
    return str(decision.post_id)


def stable_seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


_ = (date,)
