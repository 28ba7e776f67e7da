"""Is the state directory ours to write? Checked before a daemon or a one-shot action starts,
so a directory this user may not write (a bind mount owned by another uid, a relative
``state_dir`` that lands in a read-only folder, a file left behind by root) ends in one message
naming the path, the uid we run as, the owner and the fix — exit 3, no restart loop — instead
of a traceback, or a daemon waiting for a fault that will never pass.

Only a refused permission (EACCES/EPERM) is judged here. A full disk or a read-only filesystem
is the ledger's to report (``StateUnwritable``): it may pass, and the daemon waits for it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import tempfile
from collections import deque
from pathlib import Path

from glimpse_agent.errors import StatePermissionDenied
from glimpse_agent.ledger.storage import DIR_MODE

#: The errors that mean "not this user", not "not now".
PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM})
#: How many entries of the state directory are looked at (a big model cache need not be).
MAX_ENTRIES = 2000


def check_state_dir(state_dir: Path, *, config_file: Path | None = None) -> None:
    """Raise ``StatePermissionDenied`` if this process cannot create ``state_dir``, create a file
    in it, or open its files for writing. Creates the directory (0700) when it may."""
    state_dir = Path(state_dir)
    if not state_dir.exists():
        try:
            state_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in PERMISSION_ERRNOS:
                raise permission_denied(state_dir, config_file=config_file) from None
            return  # not ours to judge: the ledger reports it
    try:
        fd, probe = tempfile.mkstemp(dir=state_dir, prefix=".write-probe.", suffix=".tmp")
    except OSError as exc:
        if exc.errno in PERMISSION_ERRNOS:
            raise permission_denied(state_dir, config_file=config_file) from None
        return
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    denied = _first_denied(state_dir)
    if denied is not None:
        raise permission_denied(denied, config_file=config_file, state_dir=state_dir)


def _first_denied(state_dir: Path) -> Path | None:
    """The first entry under ``state_dir`` (breadth first, symlinks not followed) that this user
    cannot open for writing, or enter and write if it is a folder."""
    queue: deque[Path] = deque([state_dir])
    seen = 0
    while queue and seen < MAX_ENTRIES:
        folder = queue.popleft()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            if exc.errno in PERMISSION_ERRNOS:
                return folder
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_ENTRIES:
                break
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
                        return path
                    queue.append(path)
                elif entry.is_file(follow_symlinks=False):
                    # Opening for writing changes nothing; it fails as a write would.
                    os.close(os.open(path, os.O_RDWR | os.O_NOFOLLOW))
            except OSError as exc:
                if exc.errno in PERMISSION_ERRNOS:
                    return path
    return None


def permission_denied(
    path: Path | str,
    *,
    config_file: Path | None = None,
    state_dir: Path | None = None,
) -> StatePermissionDenied:
    """Our error for a path this user may not write: who we are, who owns it (or, for a path
    that does not exist yet, the folder it would be made in), and what to do."""
    path = Path(path)
    uid = os.geteuid()
    me = _name(uid)
    target = state_dir or path
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    owner_uid: int | None = None
    with contextlib.suppress(OSError):
        owner_uid = existing.stat().st_uid
    owner = _name(owner_uid) if owner_uid is not None else None
    who = f"uid {uid}" + (f" ({me})" if me else "")
    owned = (
        f"owned by uid {owner_uid}" + (f" ({owner})" if owner else "")
        if owner_uid is not None
        else "of unknown owner"
    )
    if existing == path:
        head = f"cannot write {path}: permission denied for {who}, which glimpse-agent runs as; "
        head += f"{path} is {owned}"
        chown = f"chown -R {uid} {target}"
    else:
        head = (
            f"cannot create {path}: permission denied for {who}, which glimpse-agent runs as; "
            f"the folder it would be made in, {existing}, is {owned}"
        )
        chown = f"mkdir -p {target} && chown -R {uid} {target}"
    where = f"state_dir in {config_file}" if config_file else "state_dir in agent.toml"
    relative = ""
    if config_file is not None and _inside(target, config_file.parent.resolve()):
        relative = " (a relative state_dir resolves against the folder of the config file)"
    fix = (
        f". Fix: run `{chown}` as root, or set {where}{relative} to a directory this user may "
        'write, e.g. state_dir = "${STATE_DIRECTORY:-/var/lib/glimpse-agent/<persona>}" under '
        "systemd, or a volume mounted on the container's state path under Docker"
    )
    return StatePermissionDenied(
        head + fix, path=str(path), uid=uid, owner_uid=owner_uid, owner=owner
    )


def _name(uid: int | None) -> str | None:
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OSError):  # a DynamicUser= or container uid with no passwd entry
        return None


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
    except ValueError:
        return False
    return True
