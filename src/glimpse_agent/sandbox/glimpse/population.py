"""The other agents on the emulated Glimpse: a seeded crowd that posts, likes, comments and
follows as emulated time passes, and pays special attention to agents that are *not* part of
the crowd (ours), so that follow-backs and replies have something to answer.

A quarter of the crowd are trolls: about a third of what they write is a prompt injection from
``HOSTILE_TEXTS``. Everything follows from the seed and the times ``run_until`` is called with.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from glimpse_agent.sandbox.glimpse.state import ApiError, GlimpseState, PostRec
from glimpse_agent.sandbox.glimpse.texts import (
    BIOS,
    CAPTIONS,
    COMMENTS,
    HOSTILE_TEXTS,
    NPC_NAMES,
    SUBJECTS,
    TAGS,
)

#: Actions per agent per day, and how they split. About 3 posts a day each.
ACTIONS_PER_DAY = 28.0
_CHOICES = ("post", "like", "comment", "follow")
_WEIGHTS = (0.1, 0.6, 0.22, 0.08)
#: How often an action that targets something prefers one of ours when there is one.
OUTSIDER_BIAS = 0.5
TROLL_HOSTILITY = 0.35
_RECENT = timedelta(days=3)


@dataclass
class Npc:
    agent_id: str
    hostility: float


class Population:
    """The crowd's schedule: each member acts at exponentially spaced times."""

    def __init__(self, state: GlimpseState, *, seed: int, size: int, now: datetime) -> None:
        self.rng = random.Random(f"glimpse-crowd-{seed}")
        self.npcs: dict[str, Npc] = {}
        self._queue: list[tuple[datetime, int, str]] = []
        self._tick = 0
        for i in range(size):
            name = NPC_NAMES[i % len(NPC_NAMES)] + ("" if i < len(NPC_NAMES) else f"_{i}")
            rec = state.add_agent(
                name,
                f"{name}@owners.glimpse.test",
                now - timedelta(days=30),
                verified=True,
                npc=True,
                bio=self.rng.choice(BIOS),
            )
            troll = i % 4 == 3
            self.npcs[rec.id] = Npc(rec.id, TROLL_HOSTILITY if troll else 0.0)
        ids = list(self.npcs)
        for agent_id in ids:  # a small existing social graph
            for other in self.rng.sample(ids, k=min(3, len(ids))):
                if other != agent_id and (agent_id, other) not in state.follows:
                    state.follow(agent_id, other, now - timedelta(days=20))
        self.clock = now - timedelta(days=1)  # a day of history before the world opens
        for agent_id in ids:
            self._schedule(agent_id, self.clock)
        self.run_until(state, now)

    def _schedule(self, agent_id: str, after: datetime) -> None:
        gap = self.rng.expovariate(ACTIONS_PER_DAY / 86_400.0)
        self._tick += 1
        heapq.heappush(self._queue, (after + timedelta(seconds=gap), self._tick, agent_id))

    def run_until(self, state: GlimpseState, until: datetime) -> int:
        """Let every member act for the time up to ``until``; returns the number of actions."""
        done = 0
        while self._queue and self._queue[0][0] <= until:
            at, _, agent_id = heapq.heappop(self._queue)
            self._act(state, self.npcs[agent_id], at)
            self._schedule(agent_id, at)
            done += 1
        self.clock = max(self.clock, until)
        return done

    # ------------------------------------------------------------------ one action

    def _act(self, state: GlimpseState, npc: Npc, at: datetime) -> None:
        action = self.rng.choices(_CHOICES, weights=_WEIGHTS)[0]
        try:
            if action == "post":
                self._post(state, npc, at)
            elif action == "like":
                target = self._pick_post(state, npc, at)
                if target is not None:
                    state.react(npc.agent_id, target.id, "like", at)
            elif action == "comment":
                target = self._pick_post(state, npc, at)
                if target is not None:
                    state.add_comment(npc.agent_id, target.id, self._text(npc, COMMENTS), at)
            else:
                self._follow(state, npc, at)
        except ApiError:
            pass  # liked twice, followed twice...: a real agent's retry would fail the same way

    def _text(self, npc: Npc, pool: tuple[str, ...]) -> str:
        if npc.hostility and self.rng.random() < npc.hostility:
            return self.rng.choice(HOSTILE_TEXTS)
        return self.rng.choice(pool)

    def _post(self, state: GlimpseState, npc: Npc, at: datetime) -> None:
        tag, tag2 = self.rng.sample(TAGS, 2)
        subject = self.rng.choice(SUBJECTS)
        caption = self._text(npc, CAPTIONS).format(
            subject=subject, tag=tag, tag2=tag2, n=self.rng.randint(2, 400)
        )
        post_id_hint = state.next_seq("npc-image")
        state.add_post(
            npc.agent_id,
            caption,
            f"/images/npc-{post_id_hint}.png",
            at,
            generation_model="black-forest-labs/FLUX.1-schnell",
            generation_prompt=subject,
        )

    def _pick_post(self, state: GlimpseState, npc: Npc, at: datetime) -> PostRec | None:
        # Walk back from the newest and stop early: long simulations stay cheap.
        recent: list[PostRec] = []
        for post in reversed(state.posts.values()):
            if post.created_at <= at - _RECENT or len(recent) >= 200:
                break
            if post.agent_id != npc.agent_id:
                recent.append(post)
        ours = [p for p in recent if not state.agents[p.agent_id].npc]
        pool = ours if ours and self.rng.random() < OUTSIDER_BIAS else recent
        return self.rng.choice(pool) if pool else None

    def _follow(self, state: GlimpseState, npc: Npc, at: datetime) -> None:
        followed = state.followed_ids(npc.agent_id)
        candidates = [
            a
            for a in state.agents.values()
            if a.id != npc.agent_id and a.id not in followed and a.verified
        ]
        ours = [a for a in candidates if not a.npc]
        pool = ours if ours and self.rng.random() < OUTSIDER_BIAS else candidates
        if pool:
            state.follow(npc.agent_id, self.rng.choice(pool).id, at)
