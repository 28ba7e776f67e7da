"""``history.jsonl``: our older posts, kept out of ``ledger.json`` so that file stays small.

``ledger.json`` is rewritten on every action, so its size is the cost of every write. Posts older
than ``Retention.hot_post_days`` move here: appended as one JSON line each (O(new posts), fsynced),
and once a week the file is rewritten atomically to shrink posts older than ``post_days`` to topic
+ prompt (for no-repeat checks) and to drop those older than ``prompt_days`` — so those ages are
"at least", give or take a week. Nothing of it is held in memory; it is read only when someone
asks about older posts.

A crash mid-append can leave a torn last line: readers skip it (loudly), and the next append
starts on a fresh line. A damaged line elsewhere costs that one post, not the archive.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from glimpse_agent.ledger.records import IdeaRecord, OwnPost, Retention, iso, parse_iso
from glimpse_agent.ledger.storage import (
    FILE_MODE,
    fsync_dir,
    remove_stale_temp_files,
    write_atomically,
    write_error,
)
from glimpse_agent.logs import get_logger

MAINTAIN_EVERY = timedelta(days=7)
_COMPACT_FIELDS = ("post_id", "created_at", "topic", "prompt", "angle")

log = get_logger("glimpse_agent.ledger.history")


class PostHistory:
    """Archived own posts in an append-only JSON Lines file."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._maintained_at: datetime | None = None
        if not read_only:
            remove_stale_temp_files(path)

    def append(self, posts: Sequence[OwnPost]) -> None:
        """Durably add ``posts``. Adding a post twice is harmless (readers keep one per id), so a
        crash between this and removing them from ``ledger.json`` only means they move again."""
        if not posts:
            return
        lines = "".join(_line(p.to_doc()) for p in posts).encode()
        created = not self.path.exists()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                size = os.fstat(fd).st_size
                if size and _last_byte(self.path, size) != b"\n":
                    lines = b"\n" + lines  # end a line torn by a crash instead of extending it
                view = memoryview(lines)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.path.parent)
        except OSError as e:
            # A torn line this may leave is skipped by readers; the posts stay in ledger.json.
            raise write_error(e, str(self.path)) from e

    def maintain(self, now: datetime, retention: Retention, *, force: bool = False) -> None:
        """Shrink posts older than ``post_days`` to topic + prompt and drop those older than
        ``prompt_days``; does the work at most once every ``MAINTAIN_EVERY`` unless ``force``."""
        due = self._maintained_at is None or now - self._maintained_at >= MAINTAIN_EVERY
        if not (force or due) or not self.path.exists():
            return
        full_since = iso(now - timedelta(days=retention.post_days))
        keep_since = iso(now - timedelta(days=retention.prompt_days))
        raw = self.path.read_bytes()
        lines = []
        for doc, line in self._lines(raw).values():
            if doc["created_at"] < keep_since:
                continue
            ageing = doc["created_at"] < full_since and "compact" not in doc
            lines.append(_line(_compact(doc)).encode() if ageing else line + b"\n")
        rewritten = b"".join(lines)
        if rewritten != raw:
            try:
                write_atomically(self.path, rewritten)
            except OSError as e:
                raise write_error(e, str(self.path)) from e
        self._maintained_at = now

    def posts(self, since: datetime | None = None) -> list[OwnPost]:
        """Archived posts still kept in full, created at or after ``since``."""
        out = []
        for d in self._docs().values():
            if "compact" in d or (since is not None and parse_iso(d["created_at"]) < since):
                continue
            try:
                out.append(OwnPost.from_doc(d))
            except (ValueError, TypeError, KeyError) as e:
                log.error("history_post_unreadable", file=str(self.path), error=str(e))
        return out

    def prompts(self, since: datetime) -> dict[str, IdeaRecord]:
        """Topic, prompt and angle of every archived post created at or after ``since``, by
        post id."""
        out: dict[str, IdeaRecord] = {}
        for post_id, d in self._docs().items():
            at = parse_iso(d["created_at"])
            if at >= since:
                out[post_id] = IdeaRecord(
                    _text(d.get("topic")), _text(d.get("prompt")), at, _text(d.get("angle"))
                )
        return out

    def _docs(self) -> dict[str, dict[str, Any]]:
        """Every readable post, one per post id (a later line wins), in file order."""
        if not self.path.exists():
            return {}
        return {post_id: doc for post_id, (doc, _) in self._lines(self.path.read_bytes()).items()}

    def _lines(self, raw: bytes) -> dict[str, tuple[dict[str, Any], bytes]]:
        """Each readable line of ``raw`` with its decoded post, by post id; damaged lines are
        reported and skipped."""
        found: dict[str, tuple[dict[str, Any], bytes]] = {}
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                post_id = str(doc["post_id"])
                parse_iso(doc["created_at"])
            except (ValueError, KeyError, TypeError) as e:
                log.error("history_line_unreadable", file=str(self.path), line=number, error=str(e))
                continue
            found.pop(post_id, None)  # a later copy of a post moves to the end
            found[post_id] = (doc, line)
        return found


def _text(value: Any) -> str:
    """A text field as a string, whatever a damaged line holds there."""
    return value if isinstance(value, str) else ""


def _line(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def _last_byte(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(size - 1)
        return f.read(1)


def _compact(doc: dict[str, Any]) -> dict[str, Any]:
    small = {k: doc[k] for k in _COMPACT_FIELDS if k in doc}
    small["compact"] = True
    return small
