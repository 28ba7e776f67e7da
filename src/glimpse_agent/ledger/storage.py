"""Crash-safe files for the state directory: an atomic TinyDB storage and the process lock.

TinyDB's own ``JSONStorage`` rewrites its file in place, so a full disk or a power cut mid-write
leaves truncated JSON. ``AtomicJSONStorage`` instead writes a temporary file in the same
directory, fsyncs it, ``os.replace``s it over the old one and fsyncs the directory: after a crash
the file holds either the old or the new content, never a mix. The version it replaces is kept as
``<name>.bak`` (a hard link, so rotating it costs no copy), which is where reads recover from if
the main file is ever found damaged anyway (bit rot, a copy made by hand, a filesystem that lies
about fsync). A damaged file is never silently replaced by an empty one.

TinyDB is not process-safe, hence ``StateLock``: an exclusive ``flock`` on ``<state_dir>/lock`` so
a second agent on the same state directory fails at once with a clear message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from tinydb.storages import Storage

from glimpse_agent.errors import StateCorrupt, StateError, StateLocked, StateUnwritable
from glimpse_agent.logs import get_logger

FILE_MODE = 0o600
DIR_MODE = 0o700

log = get_logger("glimpse_agent.ledger.storage")

#: Write failures of the machine, not of the program or the data: they pass once space is
#: freed or the filesystem is writable again, so they must not stop the service for good.
UNWRITABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def write_error(exc: OSError, what: str) -> StateError:
    """Our error for a failed write of ``what``: ``StateUnwritable`` (may pass: disk full,
    read-only, no permission) or a plain ``StateError``."""
    reason = exc.strerror or str(exc)
    if exc.errno in UNWRITABLE_ERRNOS:
        return StateUnwritable(
            f"cannot write {what}: {reason} (is the disk full or read-only?); "
            "the previous content is intact",
            errno=exc.errno,
        )
    return StateError(f"cannot write {what}: {reason}; the previous content is intact")


def ensure_state_dir(path: Path) -> Path:
    """Create the state directory (and parents) as 0700 if it does not exist yet."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, *, keep_backup: bool = False) -> None:
    """Durably replace ``path`` with ``data`` (mode 0600): when this returns, the new content is on
    disk; if it raises, ``path`` still holds its old content. With ``keep_backup`` the replaced
    version becomes ``<name>.bak``."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if keep_backup and path.exists():
            _rotate_backup(path)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temp_files(path: Path) -> None:
    """Delete temp files an interrupted ``write_atomically(path)`` left (``path`` is intact).
    Only call this while holding the state lock: otherwise they may be another writer's."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        # Leftovers are harmless: a directory we cannot write now keeps them until later.
        with contextlib.suppress(OSError):
            stale.unlink(missing_ok=True)


def _rotate_backup(path: Path) -> None:
    """Point ``<name>.bak`` at the current (good) ``path`` without copying it."""
    bak = backup_path(path)
    link = path.with_name(f".{path.name}.bak.tmp")
    link.unlink(missing_ok=True)  # left over from a crash between the two steps below
    try:
        os.link(path, link)
    except OSError:
        # Some filesystems (certain FUSE/network mounts) refuse hard links: copy instead.
        link.write_bytes(path.read_bytes())
        os.chmod(link, FILE_MODE)
    try:
        if bak.exists() and os.path.samefile(link, bak):
            link.unlink()  # rename() between two links of one file is a no-op that keeps both
            return
        os.replace(link, bak)
    except BaseException:
        link.unlink(missing_ok=True)
        raise


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def _parse(raw: bytes) -> dict[str, Any]:
    """Decode a store; anything but TinyDB's shape (tables of numbered documents, each an
    object) is damage, as empty, truncated or garbage bytes are: valid JSON with a table that
    is a list, or a document that is a string, would otherwise fail later, mid-action."""
    if not raw.strip():
        raise ValueError("the file is empty")
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ValueError(f"table {name!r} is a {type(table).__name__}, expected an object")
        for doc_id, doc in table.items():
            if not doc_id.isdigit():
                raise ValueError(f"table {name!r} has a document id {doc_id[:40]!r}")
            if not isinstance(doc, dict):
                raise ValueError(
                    f"document {doc_id} of table {name!r} is a {type(doc).__name__}, "
                    "expected an object"
                )
    return data


class AtomicJSONStorage(Storage):  # type: ignore[misc,unused-ignore]  # tinydb: untyped
    """A TinyDB storage with atomic, durable writes, a rotating ``.bak`` and loud recovery.

    Reads are served from memory after the first load (we hold the state lock, so nobody else
    writes the file), which keeps TinyDB's read-before-every-operation cheap. ``deferred()``
    groups several TinyDB writes into one durable write: all of them land, or none does.
    """

    def __init__(self, path: Path, *, cache: bool = True, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._use_cache = cache
        self._cache: dict[str, Any] | None = None
        self._defer_depth = 0
        self._dirty = False
        #: Bumped whenever in-memory state is thrown away, so indexes built on it know to rebuild.
        self.epoch = 0
        if not read_only:  # without the lock, a temp file may be the daemon's write in flight
            remove_stale_temp_files(path)

    # -- TinyDB Storage interface -------------------------------------------------------------

    def read(self) -> dict[str, Any] | None:
        if self._cache is not None:
            return self._cache
        data = self._load()
        if self._use_cache or self._defer_depth:
            self._cache = data
        return data

    def write(self, data: dict[str, Any]) -> None:
        if self.read_only:
            raise StateError(f"{self.path} is open read-only")
        if self._defer_depth:
            self._cache, self._dirty = data, True
            return
        self._write_now(data)

    def close(self) -> None:
        self._cache = None

    # -- our additions -------------------------------------------------------------------------

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold writes in memory and make them durable in one write on leaving the block; if the
        block raises, drop them all and reload from disk on the next read."""
        self._defer_depth += 1
        try:
            yield
        except BaseException:
            self._defer_depth -= 1
            if not self._defer_depth:
                self.discard()
            raise
        self._defer_depth -= 1
        if not self._defer_depth and self._dirty:
            data, self._dirty = self._cache, False
            if data is not None:
                self._write_now(data)
            if not self._use_cache:
                self._cache = None

    def discard(self) -> None:
        """Forget in-memory state (after a failed operation) so the next read trusts the disk."""
        self._cache, self._dirty = None, False
        self.epoch += 1

    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def _write_now(self, data: dict[str, Any]) -> None:
        try:
            raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
            write_atomically(self.path, raw, keep_backup=True)
        except BaseException as e:
            # TinyDB has already changed the cached dict in place: it no longer matches the disk.
            self.discard()
            if not isinstance(e, OSError):
                raise
            raise write_error(e, str(self.path)) from e
        self._cache = data if self._use_cache else None

    def _load(self) -> dict[str, Any] | None:
        bak = backup_path(self.path)
        if not self.path.exists():
            if not bak.exists():
                return None  # a new state directory
            log.error("state_file_missing_restoring_backup", file=str(self.path), backup=str(bak))
            return self._restore_from_backup(reason="the file is missing")
        try:
            raw = self.path.read_bytes()
        except OSError as e:
            raise StateError(f"cannot read {self.path}: {e.strerror or e}") from e
        try:
            return _parse(raw)
        except (ValueError, UnicodeDecodeError) as e:
            return self._restore_from_backup(reason=str(e))

    def _restore_from_backup(self, *, reason: str) -> dict[str, Any]:
        """The ``.bak`` content, put back in place (damaged file kept aside) unless read-only."""
        bak = backup_path(self.path)
        try:
            raw = bak.read_bytes()
            data = _parse(raw)
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise StateCorrupt(
                f"{self.path} is unreadable ({reason}) and its backup {bak} is unusable ({e}). "
                "The file was left untouched. Inspect it, restore it from your own backup, or "
                f"move it aside (mv {self.path} {self.path}.broken) to start with an empty store "
                "- the agent then forgets today's counts and any unfinished posts."
            ) from e
        if self.read_only:
            log.warning("state_file_unreadable_using_backup", file=str(self.path), reason=reason)
            return data
        aside = None
        try:
            if self.path.exists():
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
                aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
                n = 1
                while aside.exists():
                    n += 1
                    aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
                os.replace(self.path, aside)
            write_atomically(self.path, raw)
        except OSError as e:
            # Not repaired now (the next open tries again); never serve the backup from memory
            # here, or the next write would rotate the damaged file over the good backup.
            raise write_error(e, f"{self.path} (restoring it from {bak})") from e
        log.error(
            "state_file_restored_from_backup",
            file=str(self.path),
            reason=reason,
            kept_corrupt_copy=str(aside) if aside else None,
            note="changes made after the backup (the last write) are lost",
        )
        return data


class StateLock:
    """An exclusive lock on a state directory, held from ``acquire()`` until ``release()``.

    ``flock`` locks die with the process, so a crash never leaves a stale lock behind; the pid
    written into the file is only there to make the error message useful.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / "lock"
        self._fd: int | None = None

    def acquire(self) -> StateLock:
        try:
            ensure_state_dir(self.state_dir)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as e:
            raise write_error(e, f"the lock file {self.path}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateLocked(
                f"another glimpse-agent (pid {holder}) is already running on {self.state_dir}"
            ) from None
        # The pid is only for the message above: a full disk must not cost us the lock.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        # The file stays: unlinking it would let a third process lock a fresh inode while a
        # second one still waits on the old one.
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
