"""Our own posts: the last ``hot_post_days`` in ``posts`` of ``ledger.json`` (one document per
post, see ``OwnPost.to_doc``), older ones in ``history.jsonl`` (see ``history``); reads that
reach further back than ``ledger.json`` read the history too."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from glimpse_agent.ledger.records import (
    IdeaRecord,
    OwnPost,
    PastPrompt,
    as_utc,
    iso,
    parse_iso,
    utc_day,
)
from glimpse_agent.ledger.store import LedgerStore, Q, guarded
from glimpse_agent.limits import day_start


class PostLog:
    """Our posts and the ideas (topic, prompt, angle) behind them."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    @guarded
    def add_post(self, post: OwnPost) -> None:
        """Record one of our posts (idempotent by ``post_id``). Its slot counts as done."""
        with self.store.write():
            self.put(post)

    @guarded
    def recent_posts(self, n: int) -> list[OwnPost]:
        """Our ``n`` most recent posts, newest first."""
        posts = [OwnPost.from_doc(d) for d in self.store.posts.all()]
        if len(posts) < n:
            known = {p.post_id for p in posts}
            posts += [p for p in self.store.history.posts() if p.post_id not in known]
        return sorted(posts, key=lambda p: p.created_at, reverse=True)[:n]

    @guarded
    def posts_on(self, day: date) -> list[OwnPost]:
        """Our posts created on UTC ``day``, oldest first (full posts are kept ``post_days``)."""
        store = self.store
        posts = {d["post_id"]: OwnPost.from_doc(d) for d in store.posts.all()}
        if day <= utc_day(store.clock.now()) - timedelta(days=store.retention.hot_post_days):
            posts = {p.post_id: p for p in store.history.posts()} | posts
        return sorted(
            (p for p in posts.values() if utc_day(p.created_at) == day), key=lambda p: p.created_at
        )

    @guarded
    def prompts_since(self, since: datetime) -> list[PastPrompt]:
        """(topic, prompt, at) of our posts created at or after ``since``, oldest first; kept
        ``prompt_days`` days for no-repeat checks."""
        return [PastPrompt(i.topic, i.prompt, i.at) for i in self.ideas_since(since)]

    @guarded
    def ideas_since(self, since: datetime) -> list[IdeaRecord]:
        """Like ``prompts_since``, with the planner's angle of each post (empty if it was
        recorded before angles were kept)."""
        store, since = self.store, as_utc(since)
        found: dict[str, IdeaRecord] = {}
        if since < store.clock.now() - timedelta(days=store.retention.hot_post_days):
            found.update(store.history.prompts(since))
        for d in store.posts.all():
            at = parse_iso(d["created_at"])
            if at >= since:
                found[d["post_id"]] = IdeaRecord(d["topic"], d["prompt"], at, d.get("angle", ""))
        return sorted(found.values(), key=lambda p: p.at)

    def put(self, post: OwnPost) -> None:
        """Insert or replace ``post``, inside the caller's write (``settle_intent`` records the
        post in the same write that settles its intent)."""
        self.store.posts.upsert(post.to_doc(), Q.post_id == post.post_id)

    def prune(self, now: datetime) -> None:
        """Move posts older than ``hot_post_days`` to the history, and let it age its own."""
        store, r = self.store, self.store.retention
        # Posts move by whole UTC days, so history.jsonl grows once a day, not once per post.
        # It is written (durably) first: a crash before ledger.json is saved only means the
        # same posts move again.
        cutoff = iso(day_start(now) - timedelta(r.hot_post_days))
        old = store.posts.search(Q.created_at < cutoff)
        if old:
            store.history.append([OwnPost.from_doc(d) for d in old])
            store.posts.remove(doc_ids=[d.doc_id for d in old])
        store.history.maintain(now, r)
