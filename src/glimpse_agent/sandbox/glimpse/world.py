"""The emulated Glimpse's world: its data, its limits, its crowd, and helpers for tests.

    world = GlimpseWorld(SimulatedClock(utc(2025, 3, 3, 9)), seed=7)
    with LoopbackServer(create_glimpse_app(world)) as server:
        agent_id, key = world.create_agent("my_agent")
        client = GlimpseClient(f"{server.url}/api/v1", key)
        ...
        clock.advance(3600); world.advance_to()    # the crowd acts for that hour
        assert world.comments_by(npc_id)

The app runs in the server thread while tests read the world: every public method takes the
world's lock and returns copies, never live records. Time is the clock's; the crowd catches up
lazily on each request (or when ``advance_to`` is called).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from glimpse_agent.clock import Clock
from glimpse_agent.sandbox.glimpse.faults import GlimpseFaults
from glimpse_agent.sandbox.glimpse.limits import Limiter
from glimpse_agent.sandbox.glimpse.population import Population
from glimpse_agent.sandbox.glimpse.state import (
    AgentRec,
    CommentRec,
    GlimpseState,
    PostRec,
    Reaction,
    StoredSettings,
)
from glimpse_agent.sandbox.glimpse.texts import HOSTILE_TEXTS

__all__ = ["HOSTILE_TEXTS", "GlimpseWorld", "WorldStats"]


@dataclass(frozen=True)
class WorldStats:
    """Counts since the world was made. ``who`` is an agent id, or ``"ip:<addr>"`` for
    requests without a key."""

    requests: int
    requests_by_agent: dict[str, int]
    requests_by_route: dict[str, int]
    rate_limited: dict[tuple[str, str], int]  # (who, bucket) -> 429s served
    faults_served: int
    #: (who, bucket) -> requests in a bucket before the Retry-After of its last 429 had passed.
    retry_after_violations: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (who, code) -> writes refused as already done (``already_liked``, ``already_following``).
    repeats: dict[tuple[str, str], int] = field(default_factory=dict)

    def rate_limited_count(self, who: str | None = None, bucket: str | None = None) -> int:
        """429s served, optionally only to ``who`` and/or for ``bucket``."""
        return sum(
            n
            for (w, b), n in self.rate_limited.items()
            if (who is None or w == who) and (bucket is None or b == bucket)
        )


class GlimpseWorld:
    """Everything the emulated Glimpse knows, guarded by one lock."""

    def __init__(
        self,
        clock: Clock,
        *,
        seed: int = 0,
        population: int = 12,
        base_url_for_images: str | None = None,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.base_url_for_images = base_url_for_images.rstrip("/") if base_url_for_images else None
        self.lock = threading.RLock()
        self.state = GlimpseState(seed)
        self.limiter = Limiter()
        self.faults = GlimpseFaults()
        self._requests: Counter[str] = Counter()
        self._routes: Counter[str] = Counter()
        self._limited: Counter[tuple[str, str]] = Counter()
        self._blocked_until: dict[tuple[str, str], datetime] = {}
        self._violations: Counter[tuple[str, str]] = Counter()
        self._repeats: Counter[tuple[str, str]] = Counter()
        self.population = Population(self.state, seed=seed, size=population, now=clock.now())

    # ------------------------------------------------------------------ time

    def advance_to(self, now: datetime | None = None) -> int:
        """Let the crowd act up to ``now`` (default: the clock's now). Returns its actions."""
        with self.lock:
            return self.population.run_until(self.state, now or self.clock.now())

    # ------------------------------------------------------------------ making things happen

    def create_agent(
        self,
        name: str,
        *,
        verified: bool = True,
        owner_email: str | None = None,
        bio: str = "",
        api_key: str | None = None,
    ) -> tuple[str, str]:
        """A new agent outside the crowd (like ours), without spending the registration limit.
        Returns ``(agent_id, api_key)``; unverified agents get a code in ``outbox``. Pass
        ``api_key`` (``glm_…``) to choose the key, e.g. a canary in a secrecy test."""
        with self.lock:
            rec = self.state.add_agent(
                name,
                owner_email or f"{name}@owner.example",
                self.clock.now(),
                verified=verified,
                bio=bio,
                api_key=api_key,
            )
            return rec.id, rec.api_key

    def post_as(self, agent_id: str, caption: str, *, image: str | None = None) -> str:
        """Post as any agent (a crowd member, or a second agent of a test). Returns the id."""
        with self.lock:
            seq = self.state.next_seq("npc-image")
            rec = self.state.add_post(
                agent_id, caption, image or f"/images/test-{seq}.png", self.clock.now()
            )
            return rec.id

    def comment_as(self, agent_id: str, post_id: str, content: str) -> str:
        """Comment as any agent (e.g. a hostile comment on our post). Returns the id."""
        with self.lock:
            return self.state.add_comment(agent_id, post_id, content, self.clock.now()).id

    def like_as(self, agent_id: str, post_id: str) -> None:
        with self.lock:
            self.state.react(agent_id, post_id, "like", self.clock.now())

    def follow_as(self, follower_id: str, followee_id: str) -> None:
        with self.lock:
            self.state.follow(follower_id, followee_id, self.clock.now())

    # ------------------------------------------------------------------ looking

    @property
    def outbox(self) -> dict[str, str]:
        """The emulated mailbox: owner e-mail -> the last 6-digit verification code sent."""
        with self.lock:
            return dict(self.state.outbox)

    @property
    def npc_ids(self) -> list[str]:
        """The crowd's agent ids, in creation order."""
        with self.lock:
            return list(self.population.npcs)

    def agent_record(self, agent_id: str) -> AgentRec:
        with self.lock:
            return replace(self.state.agent(agent_id))

    def agent_id_by_name(self, name: str) -> str | None:
        with self.lock:
            return self.state.by_name.get(name.lower())

    def posts_by(self, agent_id: str) -> list[PostRec]:
        """The agent's posts, oldest first."""
        with self.lock:
            return [replace(p) for p in self.state.posts.values() if p.agent_id == agent_id]

    def likes_by(self, agent_id: str) -> list[str]:
        """Ids of the posts the agent currently likes, in the order liked."""
        return self._reacted_by(agent_id, "like")

    def dislikes_by(self, agent_id: str) -> list[str]:
        return self._reacted_by(agent_id, "dislike")

    def _reacted_by(self, agent_id: str, kind: Reaction) -> list[str]:
        with self.lock:
            found = [
                r
                for r in self.state.reactions.values()
                if r.agent_id == agent_id and r.kind == kind
            ]
            return [r.post_id for r in sorted(found, key=lambda r: r.seq)]

    def comments_by(self, agent_id: str) -> list[CommentRec]:
        """The agent's comments, oldest first."""
        with self.lock:
            return [c for c in self.state.comments.values() if c.agent_id == agent_id]

    def comments_on(self, post_id: str) -> list[CommentRec]:
        with self.lock:
            return [c for c in self.state.comments.values() if c.post_id == post_id]

    def follows_by(self, agent_id: str) -> list[str]:
        """Ids of the agents this agent follows, in the order followed."""
        with self.lock:
            edges = [e for e in self.state.follows.values() if e.follower_id == agent_id]
            return [e.followee_id for e in sorted(edges, key=lambda e: e.seq)]

    def followers_of(self, agent_id: str) -> list[str]:
        with self.lock:
            edges = [e for e in self.state.follows.values() if e.followee_id == agent_id]
            return [e.follower_id for e in sorted(edges, key=lambda e: e.seq)]

    def image_settings(self, agent_id: str) -> StoredSettings | None:
        with self.lock:
            return self.state.settings.get(agent_id)

    @property
    def stats(self) -> WorldStats:
        """A snapshot of the request counters."""
        with self.lock:
            return WorldStats(
                requests=sum(self._requests.values()),
                requests_by_agent=dict(self._requests),
                requests_by_route=dict(self._routes),
                rate_limited=dict(self._limited),
                faults_served=self.faults.served,
                retry_after_violations=dict(self._violations),
                repeats=dict(self._repeats),
            )

    # ------------------------------------------------------------------ for the app

    def note_request(self, who: str, route: str) -> None:
        """Count one request (caller holds the lock)."""
        self._requests[who] += 1
        self._routes[route] += 1

    def note_rate_limited(self, who: str, bucket: str) -> None:
        self._limited[(who, bucket)] += 1

    def note_retry_after(self, who: str, bucket: str, now: datetime, seconds: float) -> None:
        """A 429 told ``who`` to stay out of ``bucket`` for ``seconds`` (caller holds the lock)."""
        self._blocked_until[(who, bucket)] = now + timedelta(seconds=seconds)

    def note_bucket_request(self, who: str, bucket: str, now: datetime) -> None:
        """Count a request that came before its bucket's Retry-After had passed."""
        until = self._blocked_until.get((who, bucket))
        if until is not None and now < until:
            self._violations[(who, bucket)] += 1

    def note_repeat(self, who: str, code: str) -> None:
        """A write refused because it was already done: the client sent it twice."""
        self._repeats[(who, code)] += 1
