"""The atomic TinyDB storage and the state-directory lock: what survives crashes and damage."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tinydb import TinyDB

from glimpse_agent.errors import StateCorrupt, StateError, StateLocked, StateUnwritable
from glimpse_agent.ledger import storage as storage_mod
from glimpse_agent.ledger.storage import AtomicJSONStorage, StateLock, ensure_state_dir


def open_db(path: Path) -> tuple[TinyDB, AtomicJSONStorage]:
    store = AtomicJSONStorage(path)
    return TinyDB(storage=lambda: store), store


def content(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    return data


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- writing


def test_writes_round_trip_with_mode_0600(tmp_path: Path) -> None:
    """What TinyDB writes is on disk as JSON, readable only by us."""
    db, _ = open_db(tmp_path / "s.json")
    db.table("t").insert({"a": 1})
    assert content(tmp_path / "s.json") == {"t": {"1": {"a": 1}}}
    assert mode(tmp_path / "s.json") == 0o600


def test_state_dir_is_created_0700(tmp_path: Path) -> None:
    """A new state directory is private to our user."""
    made = ensure_state_dir(tmp_path / "a" / "state")
    assert made.is_dir() and mode(made) == 0o700


def test_each_write_keeps_the_previous_version_as_bak(tmp_path: Path) -> None:
    """After two writes, .bak holds the first version and the main file the second."""
    path = tmp_path / "s.json"
    db, _ = open_db(path)
    db.table("t").insert({"n": 1})
    db.table("t").insert({"n": 2})
    assert content(path)["t"] == {"1": {"n": 1}, "2": {"n": 2}}
    assert content(path.with_name("s.json.bak"))["t"] == {"1": {"n": 1}}
    assert mode(path.with_name("s.json.bak")) == 0o600


def test_failed_replace_leaves_the_old_content_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the rename never happens (crash, disk full), the file keeps its old content intact."""
    path = tmp_path / "s.json"
    db, _ = open_db(path)
    db.table("t").insert({"n": 1})

    def no_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage_mod.os, "replace", no_replace)
    with pytest.raises(StateError, match="No space left on device"):
        db.table("t").insert({"n": 2})
    monkeypatch.undo()
    assert content(path)["t"] == {"1": {"n": 1}}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert [d["n"] for d in db.table("t").all()] == [1]  # memory was re-read from disk


def test_a_process_killed_mid_write_leaves_a_valid_file(tmp_path: Path) -> None:
    """SIGKILL at random moments of a write loop never leaves a half-written main file."""
    path = tmp_path / "s.json"
    writer = textwrap.dedent(
        f"""
        from pathlib import Path
        from tinydb import TinyDB
        from glimpse_agent.ledger.storage import AtomicJSONStorage
        store = AtomicJSONStorage(Path({str(path)!r}))
        db = TinyDB(storage=lambda: store)
        t = db.table("t")
        print("ready", flush=True)
        while True:
            t.insert({{"blob": "x" * 20000}})
        """
    )
    for delay in (0.05, 0.12, 0.2, 0.31):
        proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if path.exists():
            assert isinstance(content(path)["t"], dict)


def test_stale_temp_files_from_a_crash_are_removed(tmp_path: Path) -> None:
    """A temp file left by a crash mid-write is cleaned up when the store is opened again."""
    stale = tmp_path / ".s.json.abc123.tmp"
    stale.write_text('{"t": {"1": ')
    AtomicJSONStorage(tmp_path / "s.json")
    assert not stale.exists()


def test_deferred_block_writes_once_or_not_at_all(tmp_path: Path) -> None:
    """Writes inside deferred() reach the disk together at the end; if it raises, none do."""
    path = tmp_path / "s.json"
    db, store = open_db(path)
    t = db.table("t")
    t.insert({"n": 1})
    with store.deferred():
        t.insert({"n": 2})
        t.insert({"n": 3})
        assert len(content(path)["t"]) == 1
    assert len(content(path)["t"]) == 3
    with pytest.raises(RuntimeError), store.deferred():
        t.insert({"n": 4})
        raise RuntimeError("boom")
    assert len(content(path)["t"]) == 3
    assert [d["n"] for d in t.all()] == [1, 2, 3]


# ---------------------------------------------------------------- reading damaged files


def test_truncated_main_file_is_restored_from_bak_and_kept_aside(tmp_path: Path) -> None:
    """A truncated file: the last good version comes back and the damaged one is kept aside."""
    path = tmp_path / "s.json"
    db, _ = open_db(path)
    db.table("t").insert({"n": 1})
    db.table("t").insert({"n": 2})
    damaged = path.read_bytes()[:-7]
    path.write_bytes(damaged)

    db2, _ = open_db(path)
    assert [d["n"] for d in db2.table("t").all()] == [1]
    aside = list(tmp_path.glob("s.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    assert content(path)["t"] == {"1": {"n": 1}}


@pytest.mark.parametrize("garbage", [b"", b"   \n", b'{"t": {"1": {"n"', b"[1, 2]", b"\xff\xfe"])
def test_any_unreadable_main_file_counts_as_damage(tmp_path: Path, garbage: bytes) -> None:
    """Empty, truncated, non-object or non-UTF-8 content all fall back to the .bak copy."""
    path = tmp_path / "s.json"
    path.with_name("s.json.bak").write_text('{"t": {"1": {"n": 1}}}')
    path.write_bytes(garbage)
    db, _ = open_db(path)
    assert db.table("t").all() == [{"n": 1}]


@pytest.mark.parametrize(
    "wrong",
    [
        b'{"t": [1, 2]}',  # a table that is a list
        b'{"t": {"1": "a string"}}',  # a document that is a string
        b'{"t": {"1": [1]}}',  # a document that is a list
        b'{"t": {"first": {"n": 9}}}',  # a document id TinyDB cannot read
        b'{"t": {"1": {"n": 1}}, "meta": 5}',  # one good table, one damaged
    ],
)
@pytest.mark.parametrize("read_only", [False, True])
def test_valid_json_of_the_wrong_shape_falls_back_to_bak(
    tmp_path: Path, wrong: bytes, read_only: bool
) -> None:
    """Valid JSON with wrong inner types is damage too: the .bak copy is read (and put back,
    the damaged file kept aside, unless read-only) instead of a traceback later."""
    path = tmp_path / "s.json"
    path.with_name("s.json.bak").write_text('{"t": {"1": {"n": 1}}}')
    path.write_bytes(wrong)
    store = AtomicJSONStorage(path, read_only=read_only)
    db = TinyDB(storage=lambda: store)
    assert db.table("t").all() == [{"n": 1}]
    if read_only:
        assert path.read_bytes() == wrong
    else:
        assert content(path) == {"t": {"1": {"n": 1}}}
        assert [p.read_bytes() for p in tmp_path.glob("s.json.corrupt-*")] == [wrong]


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_read_only_disk_is_a_fault_that_may_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    """A write refused by the machine (disk full, read-only, no permission) raises
    StateUnwritable (exit 4, restarted), not a plain StateError (exit 3, never restarted);
    the lock on a read-only directory likewise; the old content stays."""
    path = tmp_path / "s.json"
    db, _ = open_db(path)
    db.table("t").insert({"n": 1})
    real_open = os.open

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(err, os.strerror(err))

    def refuse_lock(file: Any, flags: int, *args: Any) -> int:
        if str(file).endswith("lock"):
            refuse()
        return real_open(file, flags, *args)

    monkeypatch.setattr(storage_mod.os, "replace", refuse)
    with pytest.raises(StateUnwritable, match=os.strerror(err)) as raised:
        db.table("t").insert({"n": 2})
    assert raised.value.errno == err
    monkeypatch.setattr(storage_mod.os, "open", refuse_lock)
    with pytest.raises(StateUnwritable):
        StateLock(tmp_path).acquire()
    monkeypatch.undo()
    assert content(path)["t"] == {"1": {"n": 1}}


def test_damaged_file_without_backup_raises_and_is_left_untouched(tmp_path: Path) -> None:
    """No good copy: StateCorrupt names the file and the way out; the file is not replaced."""
    path = tmp_path / "s.json"
    path.write_bytes(b'{"t": {"1": ')
    db, _ = open_db(path)
    with pytest.raises(StateCorrupt) as err:
        db.table("t").all()
    message = str(err.value)
    assert str(path) in message and "mv " in message and "left untouched" in message
    assert path.read_bytes() == b'{"t": {"1": '
    assert list(tmp_path.iterdir()) == [path]


def test_damaged_file_and_damaged_backup_raise(tmp_path: Path) -> None:
    """Both copies unreadable: StateCorrupt, and neither file is changed."""
    path = tmp_path / "s.json"
    path.write_bytes(b"{broken")
    path.with_name("s.json.bak").write_bytes(b"{also broken")
    with pytest.raises(StateCorrupt, match="backup"):
        AtomicJSONStorage(path).read()
    assert path.read_bytes() == b"{broken"


def test_missing_main_file_with_a_backup_is_restored(tmp_path: Path) -> None:
    """If only .bak is there, its content comes back rather than an empty store."""
    path = tmp_path / "s.json"
    path.with_name("s.json.bak").write_text('{"t": {"1": {"n": 1}}}')
    assert AtomicJSONStorage(path).read() == {"t": {"1": {"n": 1}}}
    assert content(path) == {"t": {"1": {"n": 1}}}


def test_a_new_directory_reads_as_empty(tmp_path: Path) -> None:
    """No file and no backup is simply a new store."""
    assert AtomicJSONStorage(tmp_path / "s.json").read() is None


# ---------------------------------------------------------------- the lock


def test_second_lock_on_the_same_dir_fails_fast_with_the_holders_pid(tmp_path: Path) -> None:
    """While one StateLock is held, another fails at once, naming the holder's pid."""
    first = StateLock(tmp_path).acquire()
    assert (tmp_path / "lock").read_text().strip() == str(os.getpid())
    with pytest.raises(StateLocked, match=rf"\(pid {os.getpid()}\) is already running on"):
        StateLock(tmp_path).acquire()
    first.release()
    with StateLock(tmp_path) as again:
        assert again.held


def test_a_history_line_of_the_wrong_shape_costs_that_post_only(tmp_path: Path) -> None:
    """history.jsonl lines that are valid JSON with wrong inner types (a list, a time that is
    a number, a cost that is a word) are skipped; the good posts still read."""
    from glimpse_agent.ledger.history import PostHistory

    path = tmp_path / "history.jsonl"
    good = {"post_id": "p1", "created_at": "2026-11-20T10:00:00+00:00", "topic": "sea"}
    lines = [
        good,
        [1, 2],
        {"post_id": "p2", "created_at": 1e20},
        {"post_id": "p3", "created_at": "2026-11-20T11:00:00+00:00", "cost_usd": "lots"},
        {"post_id": "p4", "created_at": "2026-11-20T12:00:00+00:00", "topic": ["x"]},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    history = PostHistory(path, read_only=True)
    assert [p.post_id for p in history.posts()] == ["p1", "p4"]
    since = datetime(2026, 11, 1, tzinfo=UTC)
    assert {k: v.topic for k, v in history.prompts(since).items()} == {
        "p1": "sea",
        "p3": "",
        "p4": "",
    }
