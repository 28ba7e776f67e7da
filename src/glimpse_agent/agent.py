"""Executes the planner's decisions against the services, recording everything in the ledger.

One post:   idea -> image prompt -> image (router) -> caption (chain + safety) -> intent ->
            create_post -> settle.
One session: fetch feed/timeline/explore/hashtags + own posts' comments + followers -> planner ->
            for each decision: budget check -> intent -> call -> settle/record.

Every write to Glimpse is preceded by a durable write-ahead intent, so a crash between "the POST
succeeded" and "we recorded it" is found at the next start (``reconcile``) and never produces a
second post. ``dry_run`` turns every write into a log line and nothing else: posts, likes,
comments, follows, the heartbeat, and image generation itself (Glimpse's generator would PUT the
BYOK settings and spend the day's generation quota; the others cost money). A dry run marks no
slot done in the ledger, so a real run later the same day still does the whole plan.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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
from glimpse_agent.glimpse import GlimpseClient, Post, RateLimitInfo
from glimpse_agent.imaging import ImageRequest, ImageRouter, prepare_for_post
from glimpse_agent.ledger import AsyncLedger, Ledger, OwnPost
from glimpse_agent.logs import get_logger
from glimpse_agent.persona import Persona
from glimpse_agent.planner import (
    CandidatePost,
    DayPlan,
    Decision,
    EngagementView,
    Follow,
    IncomingComment,
    Like,
    PastIdea,
    Reply,
    Slot,
    active_window,
    days_to_plan,
    is_repeat,
    next_idea,
    next_local_midnight,
    plan_day,
    plan_engagement,
    posts_allowed,
    sessions_remaining,
)
from glimpse_agent.planner import (
    Comment as CommentDecision,
)
from glimpse_agent.writing import CaptionRequest, Writing

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
        rate_limit_inbox: list[tuple[RateLimitInfo, datetime]] | None = None,
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
        self._plans: dict[str, DayPlan] = {}
        # Slots a dry run has "done": kept in memory only, so a dry run never marks a slot of
        # the real plan as done in the ledger (a later real run on the same day still posts).
        self._dry_done: set[str] = set()
        # X-RateLimit-* sets the client saw, with when; flushed into the ledger after each action.
        self._limits_inbox = rate_limit_inbox if rate_limit_inbox is not None else []
        self.log = get_logger("glimpse_agent.agent", persona=persona.name)

    # ------------------------------------------------------------------ lifecycle

    async def startup(self) -> None:
        """Learn who we are, then settle whatever a crash left half-done — before anything else."""
        me = await self.glimpse.me()
        self.self_id = me.id
        settled = await self.reconcile()
        self.log.info("agent_started", agent_id=me.id, reconciled=settled, dry_run=self.dry_run)

    async def reconcile(self, *, abandon_missing: bool = True) -> int:
        """Settle every unsettled intent against Glimpse. Returns how many were settled.
        ``abandon_missing=False`` keeps the intent of a post not (yet) on Glimpse open: right
        after a timeout the request may still be in flight, so only a later start may give up."""
        intents = await self.ledger.unsettled_intents()
        if not intents:
            return 0
        assert self.self_id is not None
        recent: list[Post] | None = None
        for intent in intents:
            payload = intent.payload
            if intent.kind == "post":
                if recent is None:
                    recent = list((await self.glimpse.agent_posts(self.self_id, limit=40)).items)
                match = _find_post(recent, payload)
                if match is not None:
                    await self._commit_post(
                        intent.intent_id,
                        match,
                        payload,
                        at=_match_time(match, intent.at),
                        reconciled=True,
                    )
                    self.log.warning(
                        "reconciled_post_found", intent=intent.intent_id, post_id=match.id
                    )
                elif not abandon_missing:
                    self.log.warning("reconcile_post_pending", intent=intent.intent_id)
                else:
                    await self.ledger.abandon_intent(intent.intent_id, "not found on Glimpse")
                    self.log.warning("reconciled_post_absent", intent=intent.intent_id)
            else:
                # Likes/follows/comments: the server may or may not have them. Count them as
                # done (spent quota, engaged target) — over-counting one like is harmless, doing
                # it twice is what we promise never to do.
                await self.ledger.run(
                    _settle_engagement,
                    intent.intent_id,
                    intent.kind,
                    str(payload.get("target", "")),
                    payload.get("counterpart"),
                    str(payload.get("bucket", "")),
                    intent.at,
                    {"reconciled": "assumed"},
                )
        return len(intents)

    # ------------------------------------------------------------------ planning

    async def budgets(self, now: datetime) -> dict[str, int]:
        return await self.ledger.remaining_all(now, self.persona)

    async def plan_day(self, now: datetime) -> tuple[list[DayPlan], datetime]:
        """Plans for every local day with slots still ahead (yesterday's overnight window too),
        and when to plan again. Re-planning is idempotent: the same ids and times come back."""
        plans = []
        for local_day in days_to_plan(self.persona, now):
            key = local_day.isoformat()
            done = await self.ledger.done_slots(key)
            done += sorted(s for s in self._dry_done if s.startswith(f"{key}/"))
            posted = sum(1 for s in done if "/post/" in s)
            # Quota as it will stand when the day's window opens: daily caps reset at midnight
            # UTC, which for most zones is not the local midnight we plan at.
            window_start, _ = active_window(self.persona, local_day)
            left = await self.budgets(max(now, window_start))
            # The day's total including what is done, so slot ids stay stable across restarts.
            allowed = posts_allowed(self.persona, posted, left)
            full = plan_day(
                self.persona,
                local_day,
                posts_allowed=allowed,
                jitter_minutes=self.config.daemon.jitter_minutes,
            )
            self._plans[key] = full
            await self.ledger.save_plan(key, _plan_json(full))
            plans.append(
                plan_day(
                    self.persona,
                    local_day,
                    posts_allowed=allowed,
                    jitter_minutes=self.config.daemon.jitter_minutes,
                    done_slot_ids=frozenset(done),
                    now=now,
                    grace_minutes=self.config.daemon.misfire_grace_minutes,
                )
            )
        return plans, next_local_midnight(self.persona, now)

    async def run_slot(self, slot: Slot) -> Outcome:
        """Run one planned slot unless it already ran (restart) — then record it as done."""
        log = self.log.bind(job=slot.slot_id, action=slot.kind)
        if slot.slot_id in self._dry_done or await self.ledger.slot_done(slot.slot_id):
            log.info("slot_already_done")
            return Outcome(slot.kind, True, "already done")
        if self.dry_run:
            self._dry_done.add(slot.slot_id)
            return await (
                self.post(slot.slot_id) if slot.kind == "post" else self._engage_slot(slot)
            )
        if slot.kind == "post":
            outcome = await self.post(slot.slot_id)
        else:
            outcome = await self._engage_slot(slot)
        if not outcome.ok or slot.kind == "engage":
            # A failed post's slot is done too: the next slot (or tomorrow) tries again; re-running
            # a failed slot after a restart could post at an unplanned hour.
            await self.ledger.mark_slot_done(
                slot.slot_id, self.clock.now(), outcome="ok" if outcome.ok else outcome.detail[:200]
            )
        return outcome

    async def _engage_slot(self, slot: Slot) -> Outcome:
        plan = self._plans.get(slot.slot_id.split("/")[0])
        left = sessions_remaining(plan, self.clock.now()) if plan else 1
        return await self.engage(slot.slot_id, sessions_left=left)

    # ------------------------------------------------------------------ posting

    async def post(self, slot_id: str | None = None) -> Outcome:
        """Make and publish one post: idea, image, caption, safety, intent, post, settle."""
        now = self.clock.now()
        slot_id = slot_id or f"adhoc/{now.isoformat()}"
        log = self.log.bind(job=slot_id, action="post")
        left = await self.budgets(now)
        if left.get("posts", 0) <= 0 or left.get("generation", 0) <= 0:
            log.info("post_skipped", reason="post or generation quota used up", left=left)
            return Outcome("post", False, "quota used up")
        history = [
            PastIdea(p.topic, p.prompt, p.at, p.angle)
            for p in await self.ledger.ideas_since(now - IDEA_MEMORY)
        ]
        idea = next_idea(self.persona, history, now, seed=slot_id)
        recent_prompts = [h.prompt for h in history]
        prompt = await self.writing.image_prompt(idea.topic, idea.angle, recent_prompts)
        # The art style is in every prompt: only the subject and the angle can repeat.
        style = self.persona.art_style
        if is_repeat(prompt, history, now, common=style):
            prompt = await self.writing.image_prompt(
                idea.topic, idea.angle, [*recent_prompts, prompt]
            )
            if is_repeat(prompt, history, now, common=style):
                log.warning("post_skipped", reason="could not find a fresh idea")
                return Outcome("post", False, "no fresh idea")
        if self.dry_run:
            # Generating is a write too (Glimpse's generator spends the day's generation quota
            # and may first PUT the BYOK settings; the others cost money): log it instead.
            log.info("dry_run_generate", prompt=prompt, backends=self.router.names)
            return await self._dry_run_post(log, idea.topic, prompt, list(idea.hashtags))
        try:
            image = await self.router.generate(
                ImageRequest(prompt=prompt, persona=self.persona.name)
            )
        except BudgetExceeded as exc:
            log.warning("post_skipped", reason=str(exc))
            await self.ledger.record_error("post", str(exc), now)
            return Outcome("post", False, str(exc))
        except ServiceError as exc:
            log.error("image_failed", error=str(exc))
            await self.ledger.record_error("imaging", str(exc), self.clock.now())
            return Outcome("post", False, f"image failed: {exc}")
        if image.backend == "glimpse":
            # Only Glimpse's own generator counts against its generation limits.
            await self.ledger.record_action("generation", self.clock.now(), ref=slot_id)
        caption = await self.writing.caption(
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
            await self.ledger.record_error("caption", "no safe caption", self.clock.now())
            return Outcome("post", False, "no safe caption")
        text = with_attribution(
            caption.text, image.attribution, self.config.safety.caption_max_chars
        )
        ready = await asyncio.to_thread(prepare_for_post, image)
        payload = {
            "slot_id": slot_id,
            "caption": text,
            "prompt": prompt,
            "topic": idea.topic,
            "angle": idea.angle,
            "backend": image.backend,
            "model": image.model,
            "cost_usd": image.cost_usd,
        }
        intent = await self.ledger.begin_intent("post", payload, self.clock.now())
        try:
            post = await self.glimpse.create_post(
                caption=text,
                image_url=ready.image_url,
                image_bytes=ready.data,
                mime_type=ready.mime_type if ready.data is not None else None,
                is_nsfw=self.persona.nsfw,
                generation_model=image.model or None,
                generation_prompt=prompt,
            )
        except (Rejected, RateLimited) as exc:
            # The server refused: it certainly did not post.
            await self.ledger.abandon_intent(intent, str(exc))
            await self._note_failure("posts", exc)
            return Outcome("post", False, f"post refused: {exc}")
        except ServiceError as exc:
            # Timeout or 5xx: it may have posted. Look now; if Glimpse cannot tell us, the intent
            # stays open and the next start settles it — never a blind second post.
            await self._note_failure("posts", exc)
            await self._reconcile_soon()
            return Outcome("post", False, f"post failed: {exc}")
        await self._commit_post(intent, post, payload, at=self.clock.now())
        await self._flush_limits()
        log.info("posted", post_id=post.id, backend=image.backend, caption_source=caption.source)
        return Outcome("post", True, post_id=post.id)

    async def _dry_run_post(
        self, log: Any, topic: str, prompt: str, hashtags: list[str]
    ) -> Outcome:
        caption = await self.writing.caption(
            CaptionRequest(topic=topic, image_prompt=prompt, hashtags=hashtags)
        )
        if caption is None:
            log.warning("post_skipped", reason="no caption passed the safety filter")
            return Outcome("post", False, "no safe caption")
        log.info("dry_run_post", caption=caption.text, prompt=prompt, topic=topic)
        return Outcome("post", True, "dry run")

    async def _commit_post(
        self,
        intent_id: str,
        post: Post,
        payload: dict[str, Any],
        *,
        at: datetime,
        reconciled: bool = False,
    ) -> None:
        own = OwnPost(
            post_id=post.id,
            seq=post.seq,
            created_at=at,
            prompt=str(payload.get("prompt", "")),
            topic=str(payload.get("topic", "")),
            caption=str(payload.get("caption", "")),
            backend=str(payload.get("backend", "")),
            model=str(payload.get("model") or ""),
            cost_usd=float(payload.get("cost_usd") or 0.0),
            slot_id=str(payload.get("slot_id") or "") or None,
            angle=str(payload.get("angle") or ""),
        )
        await self.ledger.run(_settle_post, intent_id, own, reconciled)

    async def _reconcile_soon(self) -> None:
        try:
            await self.reconcile(abandon_missing=False)
        except GlimpseAgentError as exc:
            self.log.warning("reconcile_deferred", error=str(exc))

    # ------------------------------------------------------------------ engagement

    async def engage(self, slot_id: str | None = None, *, sessions_left: int = 1) -> Outcome:
        """One engagement session: browse, let the planner choose, carry out what it chose."""
        now = self.clock.now()
        log = self.log.bind(job=slot_id or "adhoc", action="engage")
        view = await self._gather(now, sessions_left=sessions_left)
        decisions = plan_engagement(self.persona, view, now)
        counts: dict[str, int] = {"like": 0, "comment": 0, "follow": 0, "reply": 0, "skipped": 0}
        blocked: set[str] = set()
        for decision in decisions:
            bucket = _bucket_of(decision)
            if bucket in blocked:
                continue
            try:
                done = await self._execute(decision)
            except ServiceError as exc:
                await self._note_failure(bucket, exc)
                if exc.retryable:
                    blocked.add(bucket)  # a 429 or an outage: no point hammering it this session
                continue
            counts[_kind_of(decision) if done else "skipped"] += 1
        await self._flush_limits()
        log.info("engaged", candidates=len(view.candidates), decisions=len(decisions), **counts)
        return Outcome("engage", True, counts=counts)

    async def _gather(self, now: datetime, *, sessions_left: int) -> EngagementView:
        assert self.self_id is not None
        self_id = self.self_id
        sources: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("feed", lambda: self.glimpse.feed(limit=20)),
            ("timeline", lambda: self.glimpse.public_timeline(limit=30)),
            ("explore", lambda: self.glimpse.explore(limit=20)),
        ]
        for tag in self.persona.hashtags[:2]:
            name = tag.lstrip("#")
            sources.append(("hashtag", functools.partial(self.glimpse.hashtag, name, limit=20)))
        candidates: dict[str, CandidatePost] = {}
        for source, fetch in sources:
            try:
                page = await fetch()
            except ServiceError as exc:
                self.log.warning("fetch_failed", source=source, error=str(exc))
                continue
            for p in page.items:
                if p.id not in candidates and p.agent_id != self_id:
                    candidates[p.id] = _candidate(p, source)
        following = await self._agent_ids(self.glimpse.following(self_id, limit=40))
        followers = await self._followers()
        incoming = await self._incoming_comments(now)
        engaged = await self.ledger.engaged_ids()
        left = await self.budgets(now)
        today = now.astimezone(UTC).date()
        replies_today = await self.ledger.replies_by_counterpart(today)
        # Replies are counted in the comments bucket too; what is left are fresh comments.
        comments_today = await self.ledger.count_on("comments", today) - sum(replies_today.values())
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
        now = self.clock.now()
        kind, bucket, target = _kind_of(decision), _bucket_of(decision), _target_of(decision)
        counterpart = getattr(decision, "author_id", None)
        # The previous call's X-RateLimit-* headers first: mid-session, the server may know
        # that less is left than we think.
        await self._flush_limits()
        if (await self.budgets(now)).get(bucket, 0) <= 0:
            return False
        # engaged_ids() covers two weeks; has_engaged covers sixty days.
        if await self.ledger.has_engaged(kind, target):
            return False
        text: str | None = None
        if isinstance(decision, CommentDecision):
            text = await self.writing.comment_on(
                decision.caption, decision.author_name, self._topic_hint()
            )
        elif isinstance(decision, Reply):
            text = await self.writing.reply_to(
                decision.content, decision.author_name, decision.own_caption
            )
        if isinstance(decision, CommentDecision | Reply) and text is None:
            self.log.info("engagement_skipped", kind=kind, reason="no safe text")
            return False
        if self.dry_run:
            self.log.info("dry_run_" + kind, target=target, text=text)
            return True
        payload = {"target": target, "counterpart": counterpart, "bucket": bucket}
        intent = await self.ledger.begin_intent(kind, payload, now)
        try:
            if isinstance(decision, Like):
                await self.glimpse.like(decision.post_id)
            elif isinstance(decision, Follow):
                await self.glimpse.follow(decision.agent_id)
            else:
                assert text is not None
                await self.glimpse.comment(decision.post_id, text)
        except Conflict:
            # Already done on the server: remember it so we never try again; it costs no quota.
            await self.ledger.run(
                _settle_engagement, intent, kind, target, counterpart, "", now, {"already": True}
            )
            return False
        except (Rejected, RateLimited) as exc:
            await self.ledger.abandon_intent(intent, str(exc))
            raise
        except ServiceError as exc:
            # Timeout, 5xx or a garbled answer: the server may well have done it. Count it as
            # done now, as reconcile would at the next start: an uncounted comment would be
            # written again in the next session (Glimpse has no conflict for comments), and the
            # daemon may run for weeks before it restarts.
            await self.ledger.run(
                _settle_engagement,
                intent,
                kind,
                target,
                counterpart,
                bucket,
                now,
                {"assumed": True, "error": str(exc)[:200]},
            )
            raise
        await self.ledger.run(
            _settle_engagement,
            intent,
            kind,
            target,
            counterpart,
            bucket,
            self.clock.now(),
            {"ok": True},
        )
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
        await self._flush_limits()

    async def _note_failure(self, bucket: str, exc: ServiceError) -> None:
        now = self.clock.now()
        if isinstance(exc, RateLimited):
            # Wait what the server said; with no hint, a minute — never a blind retry loop.
            until = now + timedelta(seconds=exc.retry_after if exc.retry_after else 60)
            await self.ledger.note_rate_limited(exc.bucket or bucket, until)
        await self.ledger.record_error(bucket, str(exc), now)
        self.log.warning(
            "action_failed", bucket=bucket, error=str(exc), error_type=type(exc).__name__
        )

    async def _flush_limits(self) -> None:
        """Feed the X-RateLimit-* headers seen since last time into the ledger, so that the
        server's view tightens ours when it knows less is left."""
        pending, self._limits_inbox[:] = list(self._limits_inbox), []
        latest: dict[str, tuple[RateLimitInfo, datetime]] = {}
        for info, seen in pending:
            latest[info.bucket] = (info, seen)
        for bucket, (info, seen) in latest.items():
            if bucket in {"read", "registration"}:
                continue
            await self.ledger.note_server_limit(
                bucket, info.limit, info.remaining, info.reset, seen
            )


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


def _settle_post(ledger: Ledger, intent_id: str, own: OwnPost, reconciled: bool) -> None:
    """Post recorded, quota spent and intent settled in ONE atomic write: no crash can count a
    post twice or lose it."""
    with ledger.transaction():
        ledger.settle_intent(
            intent_id, {"post_id": own.post_id, "reconciled": reconciled}, post=own
        )
        ledger.record_action("posts", own.created_at, ref=own.post_id)


def _settle_engagement(
    ledger: Ledger,
    intent_id: str,
    kind: str,
    target: str,
    counterpart: str | None,
    bucket: str,
    at: datetime,
    result: dict[str, Any],
) -> None:
    with ledger.transaction():
        if bucket:
            ledger.record_action(bucket, at, ref=target)
        if target:
            ledger.mark_engaged(kind, target, at, counterpart=counterpart)
        ledger.settle_intent(intent_id, result)


# ---------------------------------------------------------------------- helpers


def _plan_json(plan: DayPlan) -> dict[str, Any]:
    return {
        "local_day": plan.local_day.isoformat(),
        "slots": [
            {"slot_id": s.slot_id, "kind": s.kind, "at": s.at.isoformat()} for s in plan.slots
        ],
    }


def _find_post(recent: list[Post], payload: dict[str, Any]) -> Post | None:
    caption = str(payload.get("caption", "")).strip()
    prompt = str(payload.get("prompt", "")).strip()
    for post in recent:
        if caption and (post.caption or "").strip() == caption:
            return post
        if prompt and (post.generation_prompt or "").strip() == prompt:
            return post
    return None


def _match_time(post: Post, fallback: datetime) -> datetime:
    created = getattr(post, "created_at", None)
    return created if isinstance(created, datetime) else fallback


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
