"""Each daemon job's deadline follows the timeouts the config already has."""

from __future__ import annotations

from pathlib import Path

from glimpse_agent.config import AgentConfig, parse_config
from glimpse_agent.run.deadlines import MARGIN_SECONDS, action_deadlines


def _config(tmp: Path, **sections: dict[str, object]) -> AgentConfig:
    return parse_config({"persona": "p.toml", **sections}, source=tmp / "agent.toml", env={})


def test_a_slower_image_chain_or_caption_source_gets_a_longer_post_deadline(
    tmp_path: Path,
) -> None:
    """The post deadline covers the image chain's deadline, prompt and caption writing and
    Glimpse's requests; raising any of them raises it; an override sets every kind."""
    base = action_deadlines(_config(tmp_path))
    assert base.post > 900 + MARGIN_SECONDS  # the default [images] deadline_seconds
    slow_images = action_deadlines(
        _config(tmp_path, images={"order": ["local"], "deadline_seconds": 1800})
    )
    assert slow_images.post == base.post + 900
    slow_llm = action_deadlines(_config(tmp_path, llm={"model": "m", "timeout": 300}))
    assert slow_llm.post > base.post and slow_llm.engage > base.engage
    assert base.heartbeat < base.engage and base.for_kind("heartbeat") == base.heartbeat
    fixed = action_deadlines(_config(tmp_path, daemon={"action_deadline_minutes": 5}))
    assert (fixed.post, fixed.engage, fixed.heartbeat) == (300, 300, 300)
