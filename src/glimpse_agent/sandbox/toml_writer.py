"""An ``agent.toml`` written from the dict ``SandboxStack.agent_toml`` builds: top-level keys,
nested tables inline. Enough TOML for a config (the standard library reads TOML, not writes it);
used by `glimpse-agent sandbox` and by tests that run commands against the emulators."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def dumps(raw: dict[str, Any]) -> str:
    """``raw`` as TOML text."""
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in raw.items())


def write_agent_toml(path: Path, raw: dict[str, Any], *, header: str | None = None) -> Path:
    """Write ``raw`` to ``path`` with mode 0600 (it holds keys), creating its folder (0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        if header:
            f.write(f"# {header}\n")
        f.write(dumps(raw))
    return path


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")
