"""Reading the raw files before any model sees them: TOML that names its file when it cannot
be read, ``${NAME}`` / ``${NAME:-default}`` interpolation in every string, and ``X_file`` twins
of secret keys (systemd ``$CREDENTIALS_DIRECTORY``, Docker ``/run/secrets``) read into ``X``.
Every problem is collected, never raised, so the user sees them all at once."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from glimpse_agent.errors import Problem

SECRET_KEYS = frozenset({"api_key", "token", "client_secret", "client_id"})

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Anything that starts like a reference but is not one: "${}", "${MY-VAR}", "${X" ...
_BAD_REF = re.compile(r"\$\{[^}]*\}?")


def _interpolate(
    value: str, key: str, file: str, env: Mapping[str, str], problems: list[Problem]
) -> str:
    """``value`` with every ``${NAME}`` / ``${NAME:-default}`` replaced. As in the shell, the
    default applies when NAME is unset *or empty*; a bare ``${NAME}`` that is unset or empty
    is a problem naming the variable (an empty key or URL is never what was meant)."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        current = env.get(name)
        if current:
            return current
        if default is not None:
            return default
        if current is None:
            problems.append(
                Problem(file, key, f"environment variable {name} is not set{_hint(name)}")
            )
        else:
            problems.append(Problem(file, key, f"environment variable {name} is set but empty"))
        return ""

    out: list[str] = []
    last = 0
    for m in _ENV_REF.finditer(value):
        out.append(_check_plain(value[last : m.start()], key, file, problems))
        out.append(sub(m))
        last = m.end()
    out.append(_check_plain(value[last:], key, file, problems))
    return "".join(out)


# Set by systemd only inside a unit (systemd.exec(5)), so a config naming them bare works under
# the unit and fails from a shell: ``status`` or ``check`` run by hand.
_UNIT_ONLY = frozenset(
    {
        "STATE_DIRECTORY",
        "CREDENTIALS_DIRECTORY",
        "RUNTIME_DIRECTORY",
        "CACHE_DIRECTORY",
        "LOGS_DIRECTORY",
        "CONFIGURATION_DIRECTORY",
    }
)


def _hint(name: str) -> str:
    if name not in _UNIT_ONLY:
        return ""
    return (
        f" (systemd sets it only inside the unit; give the path a shell should read too: "
        f'"${{{name}:-/the/same/path}}", see docs/deploy.md)'
    )


def _unit_default(path: Path, env: Mapping[str, str]) -> str:
    """Why a credential of our unit reads empty: its ``SetCredential=`` default, used when the
    ``LoadCredential=`` file did not exist at start (systemd sets INVOCATION_ID in a unit)."""
    creds = env.get("CREDENTIALS_DIRECTORY")
    if not creds or "INVOCATION_ID" not in env or not path.is_relative_to(creds):
        return ""
    return (
        f" (the unit's default: there was no /etc/glimpse-agent/credentials/<instance>/"
        f"{path.name} when it started; see docs/deploy.md)"
    )


def _check_plain(text: str, key: str, file: str, problems: list[Problem]) -> str:
    """``text`` (a stretch between references) unchanged; a malformed ``${...}`` in it is a
    problem rather than a literal that would be sent as a key or URL."""
    bad = _BAD_REF.search(text)
    if bad:
        shown = bad.group(0) if len(bad.group(0)) <= 40 else bad.group(0)[:37] + "..."
        problems.append(
            Problem(
                file,
                key,
                f"malformed environment reference {shown!r}: expected ${{NAME}} or "
                "${NAME:-default}, NAME made of letters, digits and _",
            )
        )
    return text


def prepare(
    raw: Any, *, prefix: str, file: str, base: Path, env: Mapping[str, str], problems: list[Problem]
) -> Any:
    """``raw`` with ``${ENV}`` interpolated everywhere and ``X_file`` secret twins read into
    ``X``."""
    if isinstance(raw, str):
        return _interpolate(raw, prefix, file, env, problems)
    if isinstance(raw, list):
        return [
            prepare(v, prefix=f"{prefix}[{i}]", file=file, base=base, env=env, problems=problems)
            for i, v in enumerate(raw)
        ]
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = f"{prefix}.{k}" if prefix else k
        stem = k[: -len("_file")] if k.endswith("_file") else None
        if stem in SECRET_KEYS:
            if stem in raw:
                problems.append(Problem(file, key, f"give either {stem} or {k}, not both"))
                continue
            path_s = _interpolate(str(v), key, file, env, problems)
            path = Path(path_s)
            if not path.is_absolute():
                path = base / path
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(
                    Problem(file, key, f"cannot read secret file {path}: {exc.strerror or exc}")
                )
                continue
            except UnicodeDecodeError:
                problems.append(
                    Problem(file, key, f"secret file {path} is not UTF-8 text (is it binary?)")
                )
                continue
            if not secret:
                problems.append(
                    Problem(file, key, f"secret file {path} is empty{_unit_default(path, env)}")
                )
                continue
            out[stem] = secret
            continue
        out[k] = prepare(v, prefix=key, file=file, base=base, env=env, problems=problems)
    return out


def read_toml(path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(str(path), "", "file not found")]
    except IsADirectoryError:
        return None, [Problem(str(path), "", "is a directory, expected a .toml file")]
    except OSError as exc:
        return None, [Problem(str(path), "", f"cannot read: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return None, [Problem(str(path), "", "is not UTF-8 text, expected a .toml file")]
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem(str(path), "", f"not valid TOML: {exc}")]
