"""Shared by `register` and `verify`: where the Glimpse URL and the stored key live, how the key
is written (0600 in a 0700 directory, never printed), and how Glimpse's refusals read."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from glimpse_agent.commands._common import setup_logging
from glimpse_agent.config import (
    DEFAULT_GLIMPSE_URL,
    KEY_FILE_NAME,
    AgentConfig,
    parse_config,
)
from glimpse_agent.config.sources import prepare, read_toml
from glimpse_agent.errors import (
    ConfigError,
    Conflict,
    NotVerified,
    Problem,
    RateLimited,
    Rejected,
    ServiceError,
    StateError,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.redaction import register_secret

FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True)
class Target:
    """Where onboarding talks to and writes to. ``configured_key`` is the config's
    ``glimpse.api_key`` (which wins over the stored file whenever both exist). ``key_path`` is
    ``--key-file``: the key's file named outright (a systemd credential, a Docker secret)
    instead of ``glimpse_api_key`` in the state directory."""

    base_url: str
    state_dir: Path
    configured_key: str | None
    config: str | None = None
    key_path: Path | None = None
    # key_path is the config's own glimpse.api_key_file (no --key-file given).
    key_path_from_config: bool = False

    @property
    def key_file(self) -> Path:
        return self.key_path or self.state_dir / KEY_FILE_NAME

    def stored_key(self) -> str | None:
        """The key the agent would use: the configured one, else the file `register` wrote
        (``--key-file``, named outright, wins over both)."""
        if self.configured_key and not self.key_path:
            return self.configured_key
        try:
            key = self.key_file.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        register_secret(key)
        return key or None

    @property
    def key_source(self) -> str:
        if self.configured_key and not self.key_path:
            return "glimpse.api_key in the config"
        return str(self.key_file)

    def command(self, verb: str) -> str:
        """How to run ``verb`` against the same target, for "next:" hints."""
        named = self.key_path and not self.key_path_from_config
        key = f" --key-file {self.key_path}" if named else ""
        if self.config:
            return f"glimpse-agent {verb} -c {self.config}{key}"
        where = f"--base-url {self.base_url} " + (key[1:] or f"--state-dir {self.state_dir}")
        return f"glimpse-agent {verb} {where}"


_KEY_KEYS = ("glimpse.api_key", "glimpse.api_key_file")
# What onboarding reads of a config: where Glimpse is, where the key goes. The other sections
# (image backends, captions, their secrets) are `check`'s business, so a config whose backend
# keys are not filled in yet does not stop `register` (the README's order: copy the example,
# register, then add the other keys).
_ONBOARDING_KEYS = ("persona", "state_dir")
_ONBOARDING_GLIMPSE_KEYS = ("base_url", "api_key", "api_key_file", "timeout")


def _onboarding_part(raw: dict[str, object]) -> dict[str, object]:
    part = {k: raw[k] for k in _ONBOARDING_KEYS if k in raw}
    glimpse = raw.get("glimpse")
    if isinstance(glimpse, dict):
        part["glimpse"] = {k: v for k, v in glimpse.items() if k in _ONBOARDING_GLIMPSE_KEYS}
    elif glimpse is not None:
        part["glimpse"] = glimpse  # not a table: let validation say so
    return part


def _load(path: Path) -> AgentConfig:
    """The onboarding part of the config; a ``glimpse.api_key`` naming an unset variable
    (``"${GLIMPSE_API_KEY}"`` in the example, before there is a key to put there), or an
    ``api_key_file`` not written yet (the file `register` is about to write), is left out
    rather than refused."""
    raw, problems = read_toml(path)
    if raw is None:
        raise ConfigError(problems)
    part = _onboarding_part(raw)
    try:
        return parse_config(part, source=path)
    except ConfigError as exc:
        if not exc.problems or any(p.key not in _KEY_KEYS for p in exc.problems):
            raise
        glimpse = part.get("glimpse")
        if not isinstance(glimpse, dict):
            raise
        for key in _KEY_KEYS:
            glimpse.pop(key.removeprefix("glimpse."), None)
        # An api_key_file not written yet needs no note: `target` makes it the key's file.
        unset = [p.message for p in exc.problems if p.key == "glimpse.api_key"]
        if unset:
            print(
                f"glimpse-agent: note: ignoring glimpse.api_key in {path} ("
                + "; ".join(unset)
                + "): remove it to use the stored key",
                file=sys.stderr,
            )
        return parse_config(part, source=path)


def configured_key_file(config: Path) -> Path | None:
    """The file ``config`` reads the Glimpse key from (``[glimpse] api_key_file``, ``${ENV}``
    expanded, relative to the config's folder), or None. Without ``--key-file`` that file is
    the key's file: `register` writes the key where the agent (the unit's credential, the
    container's secret) will read it, not into the state directory beside it."""
    try:
        raw = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # loading the config reports it
    glimpse = raw.get("glimpse")
    value = glimpse.get("api_key_file") if isinstance(glimpse, dict) else None
    if not isinstance(value, str):
        return None
    problems: list[Problem] = []
    base = config.parent.resolve()
    expanded = prepare(
        value, prefix="glimpse.api_key_file", file=str(config), base=base, env=os.environ,
        problems=problems,
    )  # fmt: skip
    if problems or not expanded:
        return None
    path = Path(expanded).expanduser()
    return path if path.is_absolute() else base / path


def target(args: argparse.Namespace) -> Target:
    """From ``-c`` (if given), overridden by ``--base-url`` / ``--state-dir``."""
    setup_logging(args)
    base_url, state_dir, key = DEFAULT_GLIMPSE_URL, Path("state"), None
    if args.config:
        config = _load(Path(args.config))
        base_url, state_dir = config.glimpse.base_url, config.state_dir
        key = config.glimpse.api_key.get_secret_value() if config.glimpse.api_key else None
    if args.base_url:
        base_url = args.base_url
    if args.state_dir:
        state_dir = Path(args.state_dir).expanduser()
    key_file = getattr(args, "key_file", None)
    from_config = False
    if not key_file and args.config:
        key_file = configured_key_file(Path(args.config))
        from_config = key_file is not None
    key_path = Path(key_file).expanduser().absolute() if key_file else None
    return Target(
        base_url.rstrip("/"), state_dir.absolute(), key, args.config, key_path, from_config
    )


def fail(message: str) -> int:
    """Print ``message`` as the command's error and return exit code 1."""
    print(f"glimpse-agent: {message}", file=sys.stderr)
    return 1


# --------------------------------------------------------------------------- the key file


def _secure_dir(directory: Path, *, tighten: bool = True) -> None:
    """Create ``directory`` (and missing parents) 0700; with ``tighten``, also bring it down to
    0700 when it is ours and more open (right for a state directory, not for the folder a
    ``--key-file`` happens to sit in, such as a home directory)."""
    try:
        # ``mkdir(parents=True)`` would make the missing parents with the umask's mode.
        missing = [d for d in (directory, *directory.parents) if not d.exists()]
        for made in reversed(missing):
            made.mkdir(mode=DIR_MODE, exist_ok=True)
            made.chmod(DIR_MODE)  # whatever the umask
        info = directory.stat()
        if tighten and info.st_uid == os.getuid() and info.st_mode & 0o077:
            directory.chmod(DIR_MODE)
    except OSError as exc:
        raise StateError(f"cannot use {directory} for the key: {exc.strerror or exc}") from None


class KeyWriter:
    """Writes the key to ``path`` atomically, 0600, never through a symlink.

    ``open()`` runs *before* registering, so an unwritable state directory fails before
    Glimpse issues a key that would then be lost (it is shown only once)."""

    def __init__(self, path: Path, *, tighten_dir: bool = True) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.tighten_dir = tighten_dir
        self._fd: int | None = None

    def open(self) -> KeyWriter:
        _secure_dir(self.path.parent, tighten=self.tighten_dir)
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()  # a leftover from a crash: never reuse its permissions
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            self._fd = os.open(self.tmp, flags, FILE_MODE)
            os.fchmod(self._fd, FILE_MODE)  # whatever the umask
        except OSError as exc:
            raise StateError(
                f"cannot write the key in {self.path.parent}: {exc.strerror or exc}"
            ) from None
        return self

    def commit(self, key: str) -> None:
        """Write ``key`` and move it into place; on return it is on disk."""
        assert self._fd is not None, "open() first"
        fd, self._fd = self._fd, None
        try:
            os.write(fd, (key + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


# --------------------------------------------------------------------------- messages


def wait_text(seconds: float | None) -> str:
    """``"in 42 s"`` / ``"in 12 min"`` / ``"later"``."""
    if seconds is None:
        return "later"
    if seconds < 90:
        return f"in {max(1, math.ceil(seconds))} s"
    if seconds < 5400:
        return f"in {math.ceil(seconds / 60)} min"
    return f"in {seconds / 3600:.1f} h"


def explain(exc: ServiceError, *, action: str) -> str:
    """One line on why Glimpse refused ``action``, from our error (already free of secrets)."""
    detail = exc.message
    if isinstance(exc, RateLimited):
        when = wait_text(exc.retry_after)
        return f"{action} is rate limited by Glimpse; try again {when} ({detail})"
    if isinstance(exc, NotVerified):
        return f"{action} failed: the key is not verified yet ({detail})"
    if isinstance(exc, Unauthorized):
        return f"{action} failed: Glimpse refused the key ({detail})"
    if isinstance(exc, Unavailable):
        return f"{action} failed: Glimpse did not answer; try again later ({detail})"
    if isinstance(exc, Conflict | Rejected):
        return f"{action} refused by Glimpse: {detail}"
    return f"{action} failed: {detail}"
