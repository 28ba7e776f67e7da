"""``Reconciler``: at start-up, before every post and right after a post went unanswered,
settle the intents a crash, a stop or a lost answer left open, against what Glimpse has.

A post is looked for among our recent posts and recorded if found, never posted again. It is
closed as "not posted" only once Glimpse cannot still be applying it — its request's deadline
plus ``CERTAINTY_MARGIN`` has passed (``certain_at``) — AND a look taken after that point does
not find it. Until then it stays open and no other post is made (``Poster`` asks first). An
engagement is assumed done (counted, target remembered): doing it twice is what we promise
never to do.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from glimpse_agent.agent.context import AgentContext
from glimpse_agent.agent.settle import GENERATION, close_generation, commit_post, settle_engagement
from glimpse_agent.glimpse import Post
from glimpse_agent.ledger.records import EngagementIntent, Intent, PostIntent

#: After a post request's deadline, how long a slow Glimpse may still be finishing it (the
#: client gave up, the server did not) before a look that does not find it means "not posted".
CERTAINTY_MARGIN = timedelta(minutes=10)
#: How many of our latest posts are looked through (a few days of posting).
LOOK_BACK = 40
#: A post created this long before its intent began cannot be its result (clocks differ a
#: little; an older post with the same template caption must not be taken for it).
CLOCK_SKEW = timedelta(minutes=10)


@dataclass
class Reconciled:
    """What one reconciliation did."""

    #: Intents closed (settled or abandoned).
    settled: int = 0
    #: Slot id -> post id of the posts found on Glimpse (a slot whose post is found is done).
    found: dict[str, str] = field(default_factory=dict)
    #: The latest certainty point of a post intent still open, None if none is.
    uncertain_until: datetime | None = None


def certain_at(intent: Intent, payload: PostIntent, timeout: timedelta) -> datetime:
    """When Glimpse can no longer be applying post ``intent``: a look from then on decides."""
    return payload.deadline_or(intent.at, timeout) + CERTAINTY_MARGIN


class Reconciler:
    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx

    async def open_posts(self) -> list[tuple[Intent, PostIntent]]:
        """The post intents still open, oldest first."""
        return [
            (i, PostIntent.from_doc(i.payload))
            for i in await self.ctx.ledger.unsettled_intents()
            if i.kind == "post"
        ]

    async def reconcile(self, *, abandon_missing: bool = True) -> Reconciled:
        """Settle every unsettled intent against Glimpse (a look at our recent posts, taken
        now). ``abandon_missing=False`` never closes a post intent as "not posted", even past
        its certainty point. A failing look raises (``ServiceError``): nothing is decided."""
        ctx = self.ctx
        ledger, log = ctx.ledger, ctx.log
        intents = await ledger.unsettled_intents()
        done = Reconciled()
        if not intents:
            return done
        recent: list[Post] | None = None
        for intent in intents:
            if intent.kind == GENERATION:
                # Glimpse's generator was asked and we never heard how it ended: it may have
                # made (and counted) the image. Count it: one generation too many is a smaller
                # harm than a 429 against the day's six.
                slot_id = intent.payload.get("slot_id")
                await ledger.run(
                    close_generation,
                    intent.intent_id,
                    spent=True,
                    at=intent.at,
                    slot_id=slot_id if isinstance(slot_id, str) else None,
                )
                done.settled += 1
                continue
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
                done.settled += 1
                continue
            post_intent = PostIntent.from_doc(intent.payload)
            # Read before the look: the look then happens at or after this instant.
            now = ctx.clock.now()
            certain = certain_at(intent, post_intent, ctx.glimpse_timeout)
            if recent is None:
                recent = await self._recent_unrecorded()
            match = find_post(recent, post_intent, since=intent.at - CLOCK_SKEW)
            if match is not None:
                recent.remove(match)
                await commit_post(
                    ledger,
                    intent.intent_id,
                    match,
                    post_intent,
                    at=match_time(match, intent.at),
                    reconciled=True,
                )
                if ctx.keeper is not None:
                    await asyncio.to_thread(ctx.keeper.discard_prompt, post_intent.prompt)
                if post_intent.slot_id:
                    done.found[post_intent.slot_id] = match.id
                done.settled += 1
                log.warning("reconciled_post_found", intent=intent.intent_id, post_id=match.id)
            elif abandon_missing and now >= certain:
                await ledger.abandon_intent(intent.intent_id, "not on Glimpse after its deadline")
                done.settled += 1
                log.warning("reconciled_post_absent", intent=intent.intent_id)
            else:
                # Glimpse may still be applying it: deciding now could post it twice.
                done.uncertain_until = max(done.uncertain_until or certain, certain)
                log.warning(
                    "reconcile_post_pending",
                    intent=intent.intent_id,
                    certain_at=certain.isoformat(),
                )
        return done

    async def _recent_unrecorded(self) -> list[Post]:
        """Our latest posts on Glimpse that the ledger does not already hold as ours."""
        page = await self.ctx.glimpse.agent_posts(self.ctx.me, limit=LOOK_BACK)
        known = {p.post_id for p in await self.ctx.ledger.recent_posts(LOOK_BACK * 2)}
        return [p for p in page.items if p.id not in known]


def find_post(
    recent: list[Post], intent: PostIntent, *, since: datetime | None = None
) -> Post | None:
    """The post ``intent`` became, if it is among ``recent``: one with what we sent — the same
    caption, or the same generation prompt, or the same image URL — created no earlier than
    ``since`` (when Glimpse says when). Among several, the one that also has our generation
    model and nsfw flag wins."""
    caption = _norm(intent.caption)
    prompt = _norm(intent.prompt)
    candidates = []
    for post in recent:
        created = _created(post)
        if since is not None and created is not None and created < since:
            continue
        if (
            (caption and _norm(post.caption) == caption)
            or (prompt and _norm(post.generation_prompt) == prompt)
            or (intent.image_url and post.image_url == intent.image_url)
        ):
            candidates.append(post)
    if not candidates:
        return None

    def agreement(post: Post) -> int:
        same_model = bool(intent.model) and (post.generation_model or "") == intent.model
        return int(same_model) + int(post.is_nsfw == intent.is_nsfw)

    return max(candidates, key=agreement)


def _norm(text: str | None) -> str:
    # Servers trim and fold whitespace; what we compare is the words.
    return " ".join((text or "").split())


def match_time(post: Post, fallback: datetime) -> datetime:
    return _created(post) or fallback


def _created(post: Post) -> datetime | None:
    created = getattr(post, "created_at", None)
    return created if isinstance(created, datetime) else None
