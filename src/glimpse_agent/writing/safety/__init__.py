"""The last gate before any text leaves the agent: the safety filter (``filter``: ``SafetyFilter``,
``Verdict``, ``produce_safe``) and the text normalisation that sees through disguises (``text``).

May import: ``redaction``, ``logs`` and nothing that does I/O.
"""

from __future__ import annotations

from glimpse_agent.writing.safety.filter import (
    HASHTAG,
    SafetyFilter,
    SafetyStats,
    Verdict,
    produce_safe,
)
from glimpse_agent.writing.safety.text import echoes

__all__ = [
    "HASHTAG",
    "SafetyFilter",
    "SafetyStats",
    "Verdict",
    "echoes",
    "produce_safe",
]
