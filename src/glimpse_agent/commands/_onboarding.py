"""Shared by `register` and `verify`: where the Glimpse URL and the stored key live."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from glimpse_agent.commands._common import setup_logging
from glimpse_agent.config import DEFAULT_GLIMPSE_URL, KEY_FILE_NAME, load_config
from glimpse_agent.redaction import register_secret


@dataclass(frozen=True)
class Target:
    base_url: str
    state_dir: Path
    configured_key: str | None

    @property
    def key_file(self) -> Path:
        return self.state_dir / KEY_FILE_NAME

    def stored_key(self) -> str | None:
        if self.configured_key:
            return self.configured_key
        try:
            key = self.key_file.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        register_secret(key)
        return key or None


def target(args: argparse.Namespace) -> Target:
    setup_logging(args)
    base_url, state_dir, key = DEFAULT_GLIMPSE_URL, Path("state"), None
    if args.config:
        config = load_config(args.config)
        base_url, state_dir = config.glimpse.base_url, config.state_dir
        key = config.glimpse.api_key.get_secret_value() if config.glimpse.api_key else None
    if args.base_url:
        base_url = args.base_url
    if args.state_dir:
        state_dir = Path(args.state_dir)
    return Target(base_url.rstrip("/"), state_dir, key)


def store_key(path: Path, key: str) -> None:
    """Write the key readable by its owner only (0600), atomically, in a 0700 directory."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (key + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
