"""Settling a finished action: the ledger records it, spends its quota and closes its intent in
ONE atomic write, so no crash can count an action twice or lose it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from glimpse_agent.glimpse import Post
from glimpse_agent.ledger import AsyncLedger, Ledger, OwnPost
from glimpse_agent.ledger.records import EngagementIntent, PostIntent


async def commit_post(
    ledger: AsyncLedger,
    intent_id: str,
    post: Post,
    intent: PostIntent,
    *,
    at: datetime,
    reconciled: bool = False,
) -> None:
    """``post`` (published at ``at``) is the one ``intent`` meant: record it as ours."""
    own = intent.own_post(post.id, post.seq, at)
    await ledger.run(settle_post, intent_id, own, reconciled)


def settle_post(ledger: Ledger, intent_id: str, own: OwnPost, reconciled: bool) -> None:
    """Post recorded, quota spent and intent settled in ONE atomic write: no crash can count a
    post twice or lose it."""
    with ledger.transaction():
        ledger.settle_intent(
            intent_id, {"post_id": own.post_id, "reconciled": reconciled}, post=own
        )
        ledger.record_action("posts", own.created_at, ref=own.post_id)


def settle_engagement(
    ledger: Ledger,
    intent_id: str,
    intent: EngagementIntent,
    bucket: str,
    at: datetime,
    result: dict[str, Any],
) -> None:
    """Action counted in ``bucket`` (none if empty: an engagement the server already had costs
    nothing), target remembered (with its counterpart) and intent settled in ONE atomic write:
    a crash can neither lose the engagement nor let it happen twice."""
    with ledger.transaction():
        if bucket:
            ledger.record_action(bucket, at, ref=intent.target)
        if intent.target:
            ledger.mark_engaged(intent.kind, intent.target, at, counterpart=intent.counterpart)
        ledger.settle_intent(intent_id, result)


#: The intent kind written before Glimpse's generator may be asked for an image: a kill while
#: the request is out must not lose the generation the server counted.
GENERATION = "generation"


def close_generation(
    ledger: Ledger, intent_id: str, *, spent: bool, at: datetime, slot_id: str | None
) -> None:
    """One of the day's generations counted (if Glimpse's generator made, or may have made, an
    image) and the intent closed, in ONE atomic write."""
    with ledger.transaction():
        if spent:
            ledger.record_action("generation", at, ref=slot_id)
            ledger.settle_intent(intent_id, {"spent": True})
        else:
            ledger.abandon_intent(intent_id, "Glimpse's generator made nothing")
