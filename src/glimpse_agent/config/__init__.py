"""The configuration room: ``agent.toml`` and persona files, read, validated and typed.

- ``models``  — the pydantic models of ``agent.toml`` (one section per service), validation with
  one ``Problem`` per mistake (file and key named), and ``load_agent`` / ``load_config`` /
  ``load_persona``;
- ``sources`` — raw file reading: TOML, ``${ENV}`` / ``${ENV:-default}`` expansion, ``*_file``
  secrets;
- ``secrets`` — the one walk over a config that lists its secret values.

May import: ``errors``, ``persona``, ``redaction``, ``logs``. Nothing here does network I/O.
"""

from __future__ import annotations

from glimpse_agent.config.models import (
    CAPTION_SOURCES,
    DEFAULT_GLIMPSE_URL,
    IMAGE_BACKENDS,
    KEY_FILE_NAME,
    AgentConfig,
    CaptionsSection,
    DaemonSection,
    GlifSection,
    GlimpseImagesSection,
    GlimpseSection,
    HuggingFaceSection,
    ImagesSection,
    LangflowSection,
    LLMSection,
    LoadedAgent,
    LocalImagesSection,
    OpenAIImagesSection,
    SafetySection,
    ViewComfySection,
    load_agent,
    load_config,
    load_persona,
    parse_config,
)
from glimpse_agent.config.secrets import secret_strings, secret_values

__all__ = [
    "CAPTION_SOURCES",
    "DEFAULT_GLIMPSE_URL",
    "IMAGE_BACKENDS",
    "KEY_FILE_NAME",
    "AgentConfig",
    "CaptionsSection",
    "DaemonSection",
    "GlifSection",
    "GlimpseImagesSection",
    "GlimpseSection",
    "HuggingFaceSection",
    "ImagesSection",
    "LLMSection",
    "LangflowSection",
    "LoadedAgent",
    "LocalImagesSection",
    "OpenAIImagesSection",
    "SafetySection",
    "ViewComfySection",
    "load_agent",
    "load_config",
    "load_persona",
    "parse_config",
    "secret_strings",
    "secret_values",
]
