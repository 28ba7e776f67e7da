"""What the `sandbox` command checks and shows after a run: the promises a persona makes
(exact planned posts, inside active hours, never a 429, never a duplicate, never itself),
read from the emulated world and the ledgers, plus the report's thumbnails and quota table."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from PIL import Image

from glimpse_agent.commands.sandbox.report import ReportPost
from glimpse_agent.config import AgentConfig
from glimpse_agent.imaging.backends.local import paint
from glimpse_agent.ledger import Ledger
from glimpse_agent.limits import persona_caps
from glimpse_agent.persona import Persona
from glimpse_agent.planner import is_active
from glimpse_agent.run.assemble import Runtime
from glimpse_agent.run.simulation import SimulationResult
from glimpse_agent.sandbox.glimpse.world import GlimpseWorld

QUOTA_BUCKETS = ("posts", "generation", "reactions", "comments", "follows")


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        verdict = ["All checks passed." if self.ok else f"{len(self.problems)} problem(s):"]
        return [*self.facts, *verdict, *(f"  PROBLEM: {p}" for p in self.problems)]


def audit(world: GlimpseWorld, runtimes: Sequence[Runtime], result: SimulationResult) -> Findings:
    found = Findings()
    for runtime in runtimes:
        agent = runtime.agent
        persona, me = agent.persona, agent.self_id or ""
        days = result.days.get(persona.name, {})
        for day, d in sorted(days.items()):
            if d.posts != d.planned_posts:
                found.problems.append(
                    f"{persona.name} {day}: {d.posts} posts, {d.planned_posts} planned"
                )
            for t in d.post_times:
                if not is_active(persona, t):
                    found.problems.append(
                        f"{persona.name}: post at {t.isoformat()} is outside its active hours"
                    )
        posts = world.posts_by(me)
        own_ids = {p.id for p in posts}
        likes = world.likes_by(me)
        follows = world.follows_by(me)
        comments = world.comments_by(me)
        on_others = Counter(c.post_id for c in comments if c.post_id not in own_ids)
        limited = world.stats.rate_limited_count(who=me)
        checks = {
            "429 responses": limited,
            "duplicate likes": len(likes) - len(set(likes)),
            "duplicate follows": len(follows) - len(set(follows)),
            "duplicate comments on one post": sum(n - 1 for n in on_others.values() if n > 1),
            "likes of its own posts": len(own_ids & set(likes)),
            "follows of itself": follows.count(me),
        }
        for what, n in checks.items():
            if n:
                found.problems.append(f"{persona.name}: {n} {what}")
        found.facts.append(
            f"{persona.name}: {len(posts)} posts, {len(likes)} likes, {len(comments)} comments "
            f"(incl. replies), {len(follows)} follows; 429s {limited}; duplicates 0"
            if not any(checks.values())
            else f"{persona.name}: see problems below"
        )
    return found


def quota_use(
    ledger: Ledger, persona: Persona, days: Sequence[date]
) -> tuple[dict[date, dict[str, int]], dict[str, int]]:
    caps = persona_caps(persona)
    use = {d: {b: ledger.count_on(b, d) for b in QUOTA_BUCKETS} for d in days}
    return use, {b: caps.get(b, 0) for b in QUOTA_BUCKETS}


def report_posts(
    ledger: Ledger, persona: Persona, config: AgentConfig, limit: int = 200
) -> list[ReportPost]:
    """Our posts, oldest first, with thumbnails. The sandbox posts offline-generator images,
    which are a pure function of the prompt: painting the prompt again gives the same picture."""
    out = []
    size = config.images.local
    for post in reversed(ledger.recent_posts(limit)):
        thumb: bytes | None = None
        if post.backend == "local":
            png = paint(post.prompt, size.width, size.height, None)
            img = Image.open(io.BytesIO(png))
            img.thumbnail((200, 200))
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="JPEG", quality=80)
            thumb = buf.getvalue()
        out.append(
            ReportPost(
                persona=persona.name,
                when_local=post.created_at.astimezone(persona.zone).strftime("%a %d %b %H:%M %Z"),
                caption=post.caption,
                image=thumb,
                mime_type="image/jpeg",
            )
        )
    return out
