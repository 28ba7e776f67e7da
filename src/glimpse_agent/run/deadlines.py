"""How long one action of the daemon may take before it is cancelled: derived from the
timeouts the config already has, so a slower backend configured by the user gets a longer
deadline without a second setting (``[daemon] action_deadline_minutes`` overrides it).

Pure: config in, seconds out.
"""

from __future__ import annotations

from dataclasses import dataclass

from glimpse_agent.config import AgentConfig

#: Slack on top of the sum of the parts: ledger writes, local work, scheduling.
MARGIN_SECONDS = 120.0
#: Glimpse requests of one post besides the image (who am I, settings, the POST, a check).
POST_REQUESTS = 4
#: Glimpse requests of one engagement session (feeds, hashtags, own posts' comments, followers,
#: then each like, comment, reply and follow): a generous bound on what the planner chooses.
ENGAGE_REQUESTS = 40
#: Texts written in one engagement session (comments and replies), each by the caption chain.
ENGAGE_TEXTS = 4
#: The Glimpse heartbeat: one request, then the rate limits it learned are saved.
HEARTBEAT_REQUESTS = 2


@dataclass(frozen=True)
class ActionDeadlines:
    """Seconds each kind of daemon job may run: "post" and "engage" slots, the "heartbeat"."""

    post: float
    engage: float
    heartbeat: float

    def for_kind(self, kind: str) -> float:
        return {"post": self.post, "engage": self.engage, "heartbeat": self.heartbeat}.get(
            kind, max(self.post, self.engage)
        )


def action_deadlines(config: AgentConfig) -> ActionDeadlines:
    """Each job's deadline: the sum of the timeouts of what it may wait for, plus a margin."""
    override = config.daemon.action_deadline_minutes
    if override is not None:
        seconds = override * 60.0
        return ActionDeadlines(seconds, seconds, seconds)
    request = config.glimpse.timeout
    text = _one_text(config)
    post = config.images.deadline_seconds + text * 2 + POST_REQUESTS * request  # prompt+caption
    engage = ENGAGE_REQUESTS * request + ENGAGE_TEXTS * text
    heartbeat = HEARTBEAT_REQUESTS * request
    return ActionDeadlines(
        post=post + MARGIN_SECONDS,
        engage=engage + MARGIN_SECONDS,
        heartbeat=heartbeat + MARGIN_SECONDS,
    )


def _one_text(config: AgentConfig) -> float:
    """The longest one caption (or prompt, or comment) may take: every source of the caption
    chain timing out in turn, plus the LLM when it writes prompts without being a source."""
    total = 0.0
    order = config.captions.order or []
    for source in order:
        if source == "langflow" and config.captions.langflow is not None:
            total += config.captions.langflow.timeout
        elif source == "llm" and config.llm is not None:
            total += config.llm.timeout
        elif source == "glimpse":
            total += config.glimpse.timeout
    if "llm" not in order and config.llm is not None:
        total += config.llm.timeout
    return total
