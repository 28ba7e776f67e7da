"""The writing room: image-prompt ideas, captions, comments and replies, and the safety filter
every outgoing text passes.

    writing = build_writing(config, persona, glimpse=client, http=http, secrets=values)
    prompt = await writing.image_prompt(topic, angle, recent_prompts)        # never None
    caption = await writing.caption(CaptionRequest(topic, prompt, hashtags))  # Caption | None
    text = await writing.comment_on(post_caption, author_name, topic_hint)   # str | None
    text = await writing.reply_to(comment_text, author_name, own_caption)    # str | None
    writing.safety.check(text, "comment")                                     # Verdict

None means "skip this action": the text was refused by the safety filter twice.

May import: ``glimpse`` (the Glimpse helpers a caption source uses), ``http``, ``config``,
``planner`` (the repeat check), ``persona``, ``errors``, ``redaction``, ``logs``, ``clock``. Never
``imaging``, the ledger or the agent.
"""

from __future__ import annotations

from glimpse_agent.writing.base import (
    Caption,
    CaptionRequest,
    CaptionSource,
    GlimpseHelpers,
    TextKind,
)
from glimpse_agent.writing.build import Writing, build_writing
from glimpse_agent.writing.chain import CaptionChain
from glimpse_agent.writing.langflow import LangflowCaptioner
from glimpse_agent.writing.safety import SafetyFilter, SafetyStats, Verdict, produce_safe
from glimpse_agent.writing.templates import Templates

__all__ = [
    "Caption",
    "CaptionChain",
    "CaptionRequest",
    "CaptionSource",
    "GlimpseHelpers",
    "LangflowCaptioner",
    "SafetyFilter",
    "SafetyStats",
    "Templates",
    "TextKind",
    "Verdict",
    "Writing",
    "build_writing",
    "produce_safe",
]
