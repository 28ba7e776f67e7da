"""One engagement session's decisions: what to like, comment, follow and answer.

``plan_engagement`` is a pure function of (persona, ``EngagementView``, now). What callers can
rely on, whatever the view contains:

- never itself: no like/comment on its own posts, no reply to its own comments, no self-follow;
- never twice: no like/comment on a post already liked/commented, no follow of an agent already
  followed, at most one reply per incoming comment;
- replies only with ``reply_to_comments``, and at most ``replies_per_counterpart_per_day`` per
  counterpart per UTC day *including* ``view.replies_today`` — so two agents answering each
  other can never loop;
- follow-backs only with ``follow_back``;
- a comment only on a post it also likes (now or before) and that scores at least
  ``COMMENT_THRESHOLD``, at most one per author per session;
- never more than ``view.left`` in any bucket (comments and replies share "comments"), and at
  most ``ceil(left / sessions_remaining)`` per session, so the day's quota lasts the day;
- replies and fresh comments split the "comments" share fairly: one unit at a time to whichever
  has had fewer today (``view.replies_today`` vs ``view.comments_today``; replies win a tie),
  and a side with nothing to do leaves its part to the other — so answering the comments on
  its own posts never silences a chatty persona's comments on other agents' posts;
- captions and comment texts are untrusted: they are only tokenised into lower-case words for
  scoring (bounded, set-based, so repeating a keyword gains nothing) and passed through in the
  decision for the writer; nothing in them is ever obeyed;
- the same inputs give the same decisions in the same order: replies, follow-backs, likes,
  comments, relevance follows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from glimpse_agent.persona import Persona
from glimpse_agent.planner._text import content_words, hashtags_in, tag_key

BUCKETS = ("reactions", "comments", "follows")

# Score weights. Relevance (topic words + hashtags) can reach 6; everything else together
# (followed author, recency, popularity) at most 2.5. The thresholds are set against that:
# a stranger's unrelated post can never be liked, and a comment always needs topical overlap.
WORD_POINTS, WORD_CAP = 1.0, 3.0
STYLE_WORD_POINTS = 0.5
TAG_POINTS, TAG_CAP = 1.5, 3.0
FOLLOWED_POINTS = 1.0
RECENCY_POINTS, RECENCY_HORIZON = 1.0, timedelta(hours=48)
POPULARITY_POINTS, POPULARITY_SATURATION = 0.5, 200
LIKE_THRESHOLD = 1.6
COMMENT_THRESHOLD = 3.0
FOLLOW_THRESHOLD = 4.0
MAX_POST_TAGS = 30
# An author with this many like-worthy posts in one session is worth following too.
FOLLOW_AFTER_LIKEABLE_POSTS = 2
# A comment older than this is not answered: the conversation has moved on, and the ledger's
# memory of what was answered may not reach that far back.
REPLY_MAX_AGE = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class CandidatePost:
    """A post seen in a feed. ``source`` is "feed", "timeline", "explore" or "hashtag"."""

    post_id: str
    seq: int
    author_id: str
    author_name: str
    caption: str  # untrusted
    hashtags: tuple[str, ...]
    like_count: int
    comment_count: int
    created_at: datetime | None
    source: str


@dataclass(frozen=True, slots=True)
class IncomingComment:
    """A comment someone left on one of our posts. ``content`` is untrusted."""

    comment_id: str
    post_id: str
    author_id: str
    author_name: str
    content: str
    created_at: datetime
    own_caption: str = ""


@dataclass(frozen=True, slots=True)
class EngagementView:
    """Everything one session may decide on, read-only. ``left`` is per bucket (see BUCKETS)."""

    self_agent_id: str
    candidates: tuple[CandidatePost, ...] = ()
    followed_ids: frozenset[str] = frozenset()  # agents we follow (or already tried to)
    liked_post_ids: frozenset[str] = frozenset()
    commented_post_ids: frozenset[str] = frozenset()
    new_followers: tuple[tuple[str, str], ...] = ()  # (agent id, name)
    incoming_comments: tuple[IncomingComment, ...] = ()
    replies_today: Mapping[str, int] = field(default_factory=dict)  # counterpart id -> sent
    left: Mapping[str, int] = field(default_factory=dict)
    sessions_remaining: int = 1  # this one included
    replied_comment_ids: frozenset[str] = frozenset()
    comments_today: int = 0  # fresh comments on others' posts sent today (replies not included)


@dataclass(frozen=True, slots=True)
class Like:
    post_id: str
    author_id: str


@dataclass(frozen=True, slots=True)
class Comment:
    """Comment on someone's post; ``caption`` is their (untrusted) caption, for the writer."""

    post_id: str
    author_id: str
    author_name: str
    caption: str


@dataclass(frozen=True, slots=True)
class Follow:
    agent_id: str
    reason: Literal["relevant", "follow_back"]
    agent_name: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer a comment on our post; ``content`` is their (untrusted) comment, for the writer."""

    comment_id: str
    post_id: str
    author_id: str
    author_name: str
    content: str
    own_caption: str = ""


Decision = Like | Comment | Follow | Reply


@dataclass(frozen=True, slots=True)
class Interests:
    """The persona's vocabulary, as compared against posts."""

    words: frozenset[str]
    style_words: frozenset[str]
    tags: frozenset[str]

    @classmethod
    def of(cls, persona: Persona) -> Interests:
        tags = frozenset(tag_key(t) for t in persona.hashtags)
        words = frozenset[str]().union(
            *(content_words(t) for t in persona.topics), *map(content_words, tags)
        )
        return cls(words, content_words(persona.art_style) - words, tags)


def relevance(interests: Interests, post: CandidatePost) -> float:
    """How much the post's caption and hashtags are about the persona's subjects (0..6)."""
    # The author controls the tag list too: only the first few count, like the caption's length.
    post_tags = frozenset(tag_key(t) for t in post.hashtags[:MAX_POST_TAGS])
    post_tags |= hashtags_in(post.caption)
    post_words = content_words(post.caption).union(*(content_words(t) for t in post_tags))
    word_points = WORD_POINTS * len(interests.words & post_words)
    word_points += STYLE_WORD_POINTS * len(interests.style_words & post_words)
    tag_points = TAG_POINTS * len(interests.tags & post_tags)
    return min(WORD_CAP, word_points) + min(TAG_CAP, tag_points)


def score_post(
    interests: Interests, post: CandidatePost, now: datetime, followed_ids: frozenset[str]
) -> float:
    """Relevance, plus a bonus for followed authors, recency and a little popularity."""
    score = relevance(interests, post)
    if post.author_id in followed_ids:
        score += FOLLOWED_POINTS
    if post.created_at is not None:
        age = max(timedelta(0), now - post.created_at)
        score += RECENCY_POINTS * max(0.0, 1 - age / RECENCY_HORIZON)
    buzz = max(0, post.like_count) + 2 * max(0, post.comment_count)
    score += POPULARITY_POINTS * min(1.0, math.log1p(buzz) / math.log1p(POPULARITY_SATURATION))
    return score


def session_share(left: int, sessions_remaining: int) -> int:
    """What one session may spend of ``left``: ``ceil(left / sessions)``, never more than left."""
    return math.ceil(max(0, left) / max(1, sessions_remaining))


def plan_engagement(persona: Persona, view: EngagementView, now: datetime) -> list[Decision]:
    """This session's decisions, in execution order (see the module docstring for the rules)."""
    budget = {b: session_share(view.left.get(b, 0), view.sessions_remaining) for b in BUCKETS}
    share = budget["comments"]
    replies = _replies(persona, view, now, share)
    follows = _follow_backs(persona, view, budget)
    likes, comments, relevant_follows = _posts(
        persona, view, now, budget, {f.agent_id for f in follows}, share
    )
    n_replies, n_comments = split_comments(
        share,
        len(replies),
        len(comments),
        replied=sum(view.replies_today.values()),
        commented=view.comments_today,
    )
    return [
        *replies[:n_replies],
        *follows,
        *likes,
        *comments[:n_comments],
        *relevant_follows,
    ]


def split_comments(
    share: int, replies: int, comments: int, *, replied: int = 0, commented: int = 0
) -> tuple[int, int]:
    """How many of ``replies`` and ``comments`` candidates one session sends out of ``share``.

    One unit at a time goes to whichever side has sent fewer today counting this session
    (``replied`` / ``commented`` already sent; replies win a tie), while that side still has a
    candidate; when one side runs out, the other takes the rest of the share.
    """
    r = c = 0
    for _ in range(max(0, share)):
        reply_turn = replied + r <= commented + c
        if r < replies and (reply_turn or c >= comments):
            r += 1
        elif c < comments:
            c += 1
        else:
            break
    return r, c


def _replies(persona: Persona, view: EngagementView, now: datetime, limit: int) -> list[Reply]:
    """Up to ``limit`` comments to answer, oldest first, within the per-counterpart cap."""
    cap = persona.engagement.replies_per_counterpart_per_day
    if not persona.engagement.reply_to_comments or cap <= 0:
        return []
    sent = dict(view.replies_today)
    answered = set(view.replied_comment_ids)
    out: list[Reply] = []
    # Oldest first: whoever has waited longest is answered first.
    for c in sorted(view.incoming_comments, key=lambda c: (c.created_at, c.comment_id)):
        if len(out) >= limit:
            break
        if (
            c.comment_id in answered
            or not c.author_id
            or c.author_id == view.self_agent_id
            or now - c.created_at > REPLY_MAX_AGE
            or sent.get(c.author_id, 0) >= cap
        ):
            continue
        answered.add(c.comment_id)
        sent[c.author_id] = sent.get(c.author_id, 0) + 1
        out.append(
            Reply(c.comment_id, c.post_id, c.author_id, c.author_name, c.content, c.own_caption)
        )
    return out


def _follow_backs(persona: Persona, view: EngagementView, budget: dict[str, int]) -> list[Follow]:
    if not persona.engagement.follow_back:
        return []
    out: list[Follow] = []
    planned: set[str] = set()
    for agent_id, name in view.new_followers:
        if budget["follows"] <= 0:
            break
        if not agent_id or agent_id == view.self_agent_id:
            continue
        if agent_id in view.followed_ids or agent_id in planned:
            continue
        planned.add(agent_id)
        budget["follows"] -= 1
        out.append(Follow(agent_id, "follow_back", name))
    return out


def _posts(
    persona: Persona,
    view: EngagementView,
    now: datetime,
    budget: dict[str, int],
    following_now: set[str],
    comment_limit: int,
) -> tuple[list[Like], list[Comment], list[Follow]]:
    """Likes and relevant follows within ``budget``; up to ``comment_limit`` comments, best
    first (the caller decides how many of them the shared bucket can take)."""
    interests = Interests.of(persona)
    scored: list[tuple[float, CandidatePost]] = []
    seen: set[str] = set()
    for post in view.candidates:
        if post.post_id in seen or post.author_id == view.self_agent_id:
            continue
        seen.add(post.post_id)
        scored.append((score_post(interests, post, now, view.followed_ids), post))
    # Best first; ties go to the newer post (higher seq), then the post id.
    scored.sort(key=lambda sp: (-sp[0], -sp[1].seq, sp[1].post_id))
    likeable = [(s, p) for s, p in scored if s >= LIKE_THRESHOLD]

    likes: list[Like] = []
    for _, post in likeable:
        if budget["reactions"] <= 0:
            break
        if post.post_id not in view.liked_post_ids:
            budget["reactions"] -= 1
            likes.append(Like(post.post_id, post.author_id))
    liked = view.liked_post_ids | {like.post_id for like in likes}

    comments: list[Comment] = []
    commented_authors: set[str] = set()
    for score, post in likeable:
        if len(comments) >= comment_limit or score < COMMENT_THRESHOLD:
            break
        if (
            post.post_id in view.commented_post_ids
            or post.post_id not in liked
            or post.author_id in commented_authors
        ):
            continue
        commented_authors.add(post.author_id)
        comments.append(Comment(post.post_id, post.author_id, post.author_name, post.caption))

    return likes, comments, _relevant_follows(view, likeable, budget, following_now)


def _relevant_follows(
    view: EngagementView,
    likeable: list[tuple[float, CandidatePost]],
    budget: dict[str, int],
    following_now: set[str],
) -> list[Follow]:
    best: dict[str, float] = {}
    count: dict[str, int] = {}
    names: dict[str, str] = {}
    for score, post in likeable:
        author = post.author_id
        if not author or author in view.followed_ids or author in following_now:
            continue
        best[author] = max(best.get(author, 0.0), score)
        count[author] = count.get(author, 0) + 1
        names.setdefault(author, post.author_name)
    worthy = [
        a for a in best if best[a] >= FOLLOW_THRESHOLD or count[a] >= FOLLOW_AFTER_LIKEABLE_POSTS
    ]
    worthy.sort(key=lambda a: (-best[a], -count[a], a))
    out: list[Follow] = []
    for author in worthy:
        if budget["follows"] <= 0:
            break
        budget["follows"] -= 1
        out.append(Follow(author, "relevant", names[author]))
    return out
