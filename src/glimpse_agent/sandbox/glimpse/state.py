"""The emulated Glimpse's data and the rules on it: agents, posts, comments, reactions,
follows, stored image settings. Every operation either changes the state consistently or
raises ``ApiError`` (status + error code) and changes nothing.

No locking here: ``GlimpseWorld`` owns the lock and calls in while holding it.
"""

from __future__ import annotations

import random
import re
import string
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Reaction = Literal["like", "dislike"]
_HASHTAG = re.compile(r"#(\w+)")
_NAME = re.compile(r"^[A-Za-z0-9_]{3,30}$")
MAX_CAPTION = 2200
MAX_COMMENT = 1000


class ApiError(Exception):
    """An error answer: ``{"error": {"code", "message", "status", **extra}}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


@dataclass
class AgentRec:
    id: str
    name: str
    owner_email: str
    api_key: str
    created_at: datetime
    verified: bool = False
    npc: bool = False
    display_name: str | None = None
    bio: str = ""
    avatar_url: str | None = None
    last_active_at: datetime | None = None
    code: str | None = None
    follower_count: int = 0
    following_count: int = 0
    post_count: int = 0


@dataclass
class PostRec:
    id: str
    seq: int
    agent_id: str
    caption: str
    image: str  # an absolute URL, or a path under the API root ("/images/…")
    created_at: datetime
    is_nsfw: bool = False
    generation_model: str | None = None
    generation_prompt: str | None = None
    hashtags: list[str] = field(default_factory=list)
    like_count: int = 0
    dislike_count: int = 0
    comment_count: int = 0


@dataclass(frozen=True)
class CommentRec:
    id: str
    seq: int
    post_id: str
    agent_id: str
    content: str
    created_at: datetime


@dataclass(frozen=True)
class ReactionRec:
    agent_id: str
    post_id: str
    kind: Reaction
    seq: int
    at: datetime


@dataclass(frozen=True)
class FollowRec:
    follower_id: str
    followee_id: str
    seq: int
    at: datetime


@dataclass(frozen=True)
class StoredSettings:
    provider: str
    api_key: str
    updated_at: datetime


@dataclass(frozen=True)
class GenerationRec:
    id: str
    agent_id: str
    prompt: str
    provider: str
    model: str
    created_at: datetime


def hashtags_of(caption: str) -> list[str]:
    """Lower-case tags in order of first appearance."""
    return list(dict.fromkeys(t.lower() for t in _HASHTAG.findall(caption)))


class GlimpseState:
    """All of Glimpse's data. Ids, keys and codes come from a seeded RNG (reproducible runs)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"glimpse-ids-{seed}")
        self._seq: Counter[str] = Counter()
        self.agents: dict[str, AgentRec] = {}
        self.by_key: dict[str, str] = {}
        self.by_name: dict[str, str] = {}
        self.posts: dict[str, PostRec] = {}  # insertion order is seq order
        self.comments: dict[str, CommentRec] = {}
        self.reactions: dict[tuple[str, str], ReactionRec] = {}  # (agent_id, post_id)
        self.follows: dict[tuple[str, str], FollowRec] = {}  # (follower_id, followee_id)
        self.settings: dict[str, StoredSettings] = {}
        self.generations: dict[str, GenerationRec] = {}
        self.outbox: dict[str, str] = {}  # owner e-mail -> the last verification code sent

    # ------------------------------------------------------------------ ids

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def next_seq(self, kind: str) -> int:
        self._seq[kind] += 1
        return self._seq[kind]

    def new_key(self) -> str:
        return "glm_" + "".join(self._rng.choices(string.ascii_letters + string.digits, k=40))

    def new_code(self) -> str:
        return f"{self._rng.randrange(1_000_000):06d}"

    # ------------------------------------------------------------------ agents

    def agent(self, agent_id: str) -> AgentRec:
        found = self.agents.get(agent_id)
        if found is None:
            raise ApiError(404, "agent_not_found", f"No agent with id {agent_id}")
        return found

    def add_agent(
        self,
        name: str,
        owner_email: str,
        now: datetime,
        *,
        verified: bool = False,
        npc: bool = False,
        bio: str = "",
        api_key: str | None = None,
    ) -> AgentRec:
        if not _NAME.match(name):
            raise ApiError(
                400, "invalid_name", "name must be 3-30 characters: letters, digits, underscore"
            )
        if "@" not in owner_email or len(owner_email) > 254:
            raise ApiError(400, "invalid_email", "owner_email must be an e-mail address")
        if name.lower() in self.by_name:
            raise ApiError(409, "name_taken", f"The name {name} is already registered")
        if api_key is not None and (not api_key.startswith("glm_") or api_key in self.by_key):
            raise ValueError("api_key must be a new key with the glm_ prefix")
        rec = AgentRec(
            id=self.new_id(),
            name=name,
            owner_email=owner_email,
            api_key=api_key or self.new_key(),
            created_at=now,
            verified=verified,
            npc=npc,
            display_name=name.replace("_", " ").title(),
            bio=bio,
        )
        if not verified:
            rec.code = self.new_code()
            self.outbox[owner_email] = rec.code
        self.agents[rec.id] = rec
        self.by_key[rec.api_key] = rec.id
        self.by_name[name.lower()] = rec.id
        return rec

    # ------------------------------------------------------------------ posts

    def post(self, post_id: str) -> PostRec:
        found = self.posts.get(post_id)
        if found is None:
            raise ApiError(404, "post_not_found", f"No post with id {post_id}")
        return found

    def add_post(
        self,
        agent_id: str,
        caption: str,
        image: str,
        now: datetime,
        *,
        is_nsfw: bool = False,
        generation_model: str | None = None,
        generation_prompt: str | None = None,
    ) -> PostRec:
        if len(caption) > MAX_CAPTION:
            raise ApiError(400, "caption_too_long", f"caption is over {MAX_CAPTION} characters")
        rec = PostRec(
            id=self.new_id(),
            seq=self.next_seq("post"),
            agent_id=agent_id,
            caption=caption,
            image=image,
            created_at=now,
            is_nsfw=is_nsfw,
            generation_model=generation_model,
            generation_prompt=generation_prompt,
            hashtags=hashtags_of(caption),
        )
        self.posts[rec.id] = rec
        self.agents[agent_id].post_count += 1
        return rec

    def delete_post(self, agent_id: str, post_id: str) -> None:
        rec = self.post(post_id)
        if rec.agent_id != agent_id:
            raise ApiError(403, "not_post_owner", "You can only delete your own posts")
        del self.posts[post_id]
        self.agents[agent_id].post_count -= 1
        for key in [k for k in self.reactions if k[1] == post_id]:
            del self.reactions[key]
        for cid in [c.id for c in self.comments.values() if c.post_id == post_id]:
            del self.comments[cid]

    def newest_posts(self) -> list[PostRec]:
        return list(reversed(self.posts.values()))

    # ------------------------------------------------------------------ reactions, comments

    def react(self, agent_id: str, post_id: str, kind: Reaction, now: datetime) -> ReactionRec:
        rec = self.post(post_id)
        if rec.agent_id == agent_id:
            raise ApiError(409, f"cannot_{kind}_own_post", f"You cannot {kind} your own post")
        old = self.reactions.get((agent_id, post_id))
        if old is not None and old.kind == kind:
            raise ApiError(409, f"already_{kind}d", f"You already {kind}d this post")
        if old is not None:
            self._count(rec, old.kind, -1)
        reaction = ReactionRec(agent_id, post_id, kind, self.next_seq("reaction"), now)
        self.reactions[(agent_id, post_id)] = reaction
        self._count(rec, kind, +1)
        return reaction

    def unreact(self, agent_id: str, post_id: str) -> None:
        rec = self.post(post_id)
        old = self.reactions.pop((agent_id, post_id), None)
        if old is None:
            raise ApiError(404, "no_reaction", "You have not reacted to this post")
        self._count(rec, old.kind, -1)

    @staticmethod
    def _count(rec: PostRec, kind: Reaction, delta: int) -> None:
        if kind == "like":
            rec.like_count += delta
        else:
            rec.dislike_count += delta

    def add_comment(self, agent_id: str, post_id: str, content: str, now: datetime) -> CommentRec:
        rec = self.post(post_id)
        text = content.strip()
        if not 1 <= len(text) <= MAX_COMMENT:
            raise ApiError(400, "invalid_content", f"content must be 1-{MAX_COMMENT} characters")
        comment = CommentRec(self.new_id(), self.next_seq("comment"), post_id, agent_id, text, now)
        self.comments[comment.id] = comment
        rec.comment_count += 1
        return comment

    # ------------------------------------------------------------------ follows

    def follow(self, follower_id: str, followee_id: str, now: datetime) -> FollowRec:
        target = self.agent(followee_id)
        if follower_id == followee_id:
            raise ApiError(409, "cannot_follow_self", "You cannot follow yourself")
        if (follower_id, followee_id) in self.follows:
            raise ApiError(409, "already_following", f"You already follow {target.name}")
        edge = FollowRec(follower_id, followee_id, self.next_seq("follow"), now)
        self.follows[(follower_id, followee_id)] = edge
        target.follower_count += 1
        self.agents[follower_id].following_count += 1
        return edge

    def unfollow(self, follower_id: str, followee_id: str) -> None:
        target = self.agent(followee_id)
        if self.follows.pop((follower_id, followee_id), None) is None:
            raise ApiError(404, "not_following", f"You do not follow {target.name}")
        target.follower_count -= 1
        self.agents[follower_id].following_count -= 1

    def followed_ids(self, agent_id: str) -> set[str]:
        return {b for (a, b) in self.follows if a == agent_id}
