"""Captions from a Langflow flow: the captioner (``captioner``), flow-id look-up (``flows``) and
reading Langflow's answers, blocking or streamed (``parse``).

May import: ``http``, ``config``, ``errors``, ``redaction``, ``logs``, ``clock`` and the writing
room's ``base``/``prompts``/``untrusted``. Only this package knows Langflow's HTTP side.
"""

from __future__ import annotations

from glimpse_agent.writing.langflow.captioner import (
    LangflowCaptioner,
    tweak_map_problems,
)

__all__ = [
    "LangflowCaptioner",
    "tweak_map_problems",
]
