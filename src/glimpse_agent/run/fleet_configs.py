"""Which personas a fleet runs: the ``agent.toml`` files it was given (``-c`` repeated, or every
``*.toml`` in ``--fleet DIR``), each loaded on its own so one broken file never stops the rest,
and the checks only a fleet needs: no two files may share a persona name, a state directory or
a Glimpse key (two personas on one account is the "one account posts for all" bug).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from glimpse_agent.config import LoadedAgent, load_agent
from glimpse_agent.errors import ConfigError, Problem


@dataclass(frozen=True)
class FleetSource:
    """Where the fleet's configs come from: fixed files, or a directory read again on reload."""

    files: tuple[Path, ...] = ()
    directory: Path | None = None

    def paths(self) -> list[Path]:
        """The config files, in a stable order (a directory's ``*.toml``, sorted by name).
        Raises ``ConfigError`` when the directory cannot be listed."""
        found = [p.resolve() for p in self.files]
        if self.directory is not None:
            try:
                found += sorted(p.resolve() for p in self.directory.glob("*.toml") if p.is_file())
            except OSError as exc:
                raise ConfigError(
                    [Problem(str(self.directory), "", f"cannot list the fleet directory: {exc}")]
                ) from None
        unique: list[Path] = []
        for path in found:
            if path not in unique:
                unique.append(path)
        return unique

    def describe(self) -> str:
        return str(self.directory) if self.directory is not None else f"{len(self.files)} files"


@dataclass(frozen=True)
class Loaded:
    """One config file as last read: its agent, or the problems that kept it from loading."""

    path: Path
    agent: LoadedAgent | None
    problems: tuple[Problem, ...] = ()
    #: A digest of the Glimpse key (never the key): how two files on one account are found.
    key_digest: str | None = None

    @property
    def name(self) -> str:
        """The persona's name, or the file's stem while it does not load."""
        return self.agent.persona.name if self.agent is not None else self.path.stem


def load_one(path: Path) -> Loaded:
    """``path`` loaded, or its problems; never raises."""
    try:
        agent = load_agent(path)
    except ConfigError as exc:
        return Loaded(path, None, tuple(exc.problems))
    except OSError as exc:
        return Loaded(path, None, (Problem(str(path), "", f"cannot be read: {exc}"),))
    key = agent.config.glimpse_key()
    digest = hashlib.sha256(key.encode()).hexdigest() if key else None
    return Loaded(path, agent, key_digest=digest)


def clashes(candidate: Loaded, others: Sequence[Loaded]) -> list[Problem]:
    """What ``candidate`` shares with a persona already in the fleet (``others``), which
    would make two personas write one ledger, or post as one account."""
    if candidate.agent is None:
        return []
    problems: list[Problem] = []
    mine = candidate.agent
    for other in others:
        if other.agent is None or other.path == candidate.path:
            continue
        if other.agent.persona.name == mine.persona.name:
            problems.append(
                Problem(
                    str(candidate.path),
                    "persona",
                    f"persona name {mine.persona.name!r} is already run by {other.path}; "
                    "each persona of a fleet needs its own name",
                )
            )
        if other.agent.config.state_dir.resolve() == mine.config.state_dir.resolve():
            problems.append(
                Problem(
                    str(candidate.path),
                    "state_dir",
                    f"{mine.config.state_dir} is already the state directory of {other.path}; "
                    "each persona needs its own (its ledger, lock and keys live there)",
                )
            )
        if candidate.key_digest and candidate.key_digest == other.key_digest:
            problems.append(
                Problem(
                    str(candidate.path),
                    "glimpse.api_key",
                    f"the same Glimpse key as {other.path}: two personas would post as one "
                    "account; give each its own key",
                )
            )
    return problems


def with_clashes(loaded: Loaded, others: Sequence[Loaded]) -> Loaded:
    """``loaded``, turned into a config problem when it clashes with ``others``."""
    problems = clashes(loaded, others)
    if not problems:
        return loaded
    return Loaded(loaded.path, None, tuple(problems))


def load_all(paths: Sequence[Path]) -> list[Loaded]:
    """Every file loaded; a later file that clashes with an earlier one is refused (the
    earlier one runs), so the order of ``paths`` decides, and it is stable."""
    accepted: list[Loaded] = []
    for path in paths:
        accepted.append(with_clashes(load_one(path), accepted))
    return accepted
