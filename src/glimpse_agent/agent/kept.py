"""``ImageKeeper``: images made (and paid for, or counted against Glimpse's six a day) but not
posted yet, kept in the state directory so that the next attempt posts one of them instead of
generating again — after a caption that failed, a post refused for a passing reason, a post
whose fate is not yet known, or a kill between generating and posting.

Files: ``kept_images/<key>.json`` (prompt, topic, angle, hashtags, backend, model, cost, URL or
MIME type, when kept) and, for an image given as bytes, ``kept_images/<key>.bin``; both 0600,
written whole (temporary file, fsync, rename), the bytes before the description, so a
description always has its image. Bounded: at most ``MAX_KEPT`` images, none older than
``MAX_AGE`` (a URL may expire, and an idea should not come back days later).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from glimpse_agent.clock import Clock
from glimpse_agent.imaging import GeneratedImage
from glimpse_agent.logs import get_logger

KEPT_DIR = "kept_images"
MAX_KEPT = 3
MAX_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class KeptImage:
    """One image kept for a later post, with the idea it was drawn for."""

    key: str
    image: GeneratedImage
    topic: str
    angle: str
    hashtags: tuple[str, ...]
    kept_at: datetime


class ImageKeeper:
    """The kept images of one state directory. Synchronous file I/O: call it off the loop."""

    def __init__(self, state_dir: Path, clock: Clock) -> None:
        self.dir = Path(state_dir) / KEPT_DIR
        self.clock = clock
        self.log = get_logger("glimpse_agent.agent.kept")

    def keep(
        self, image: GeneratedImage, *, topic: str, angle: str, hashtags: tuple[str, ...]
    ) -> str | None:
        """Keep ``image``; its key, or None if the state directory would not take it (a full
        or read-only disk must not cost the post: the image is still in memory)."""
        key = uuid.uuid4().hex
        meta: dict[str, Any] = {
            "key": key,
            "kept_at": self.clock.now().isoformat(),
            "topic": topic,
            "angle": angle,
            "hashtags": list(hashtags),
            "backend": image.backend,
            "model": image.model,
            "prompt": image.prompt,
            "url": image.url,
            "mime_type": image.mime_type,
            "width": image.width,
            "height": image.height,
            "cost_usd": image.cost_usd,
            "attribution": image.attribution,
        }
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if image.data is not None:
                _write(self.dir / f"{key}.bin", image.data)
            _write(self.dir / f"{key}.json", json.dumps(meta).encode())
        except OSError as exc:
            self.log.warning("kept_image_not_saved", error=str(exc))
            return None
        self._trim()
        return key

    def oldest(self) -> KeptImage | None:
        """The oldest image still fit to post, if any (stale and broken ones are dropped)."""
        self._trim()
        kept = self._all()
        return kept[0] if kept else None

    def discard(self, key: str | None) -> None:
        """Forget image ``key`` (it was posted, or it can never be)."""
        if not key:
            return
        for suffix in (".json", ".bin"):
            try:
                (self.dir / f"{key}{suffix}").unlink(missing_ok=True)
            except OSError as exc:
                self.log.warning("kept_image_not_removed", error=str(exc))

    def discard_prompt(self, prompt: str) -> None:
        """Forget every kept image drawn from ``prompt`` (its post was found on Glimpse)."""
        for kept in self._all():
            if kept.image.prompt.strip() == prompt.strip():
                self.discard(kept.key)

    def _all(self) -> list[KeptImage]:
        """Every readable kept image, oldest first; unreadable ones are removed."""
        if not self.dir.is_dir():
            return []
        found = []
        for path in self.dir.glob("*.json"):
            kept = self._read(path)
            if kept is None:
                self.discard(path.stem)
            else:
                found.append(kept)
        return sorted(found, key=lambda k: k.kept_at)

    def _read(self, path: Path) -> KeptImage | None:
        try:
            meta = json.loads(path.read_bytes())
            data = None
            if not meta.get("url"):
                data = (self.dir / f"{path.stem}.bin").read_bytes()
            image = GeneratedImage(
                backend=str(meta["backend"]),
                model=str(meta.get("model") or ""),
                prompt=str(meta["prompt"]),
                data=data,
                mime_type=meta.get("mime_type"),
                url=meta.get("url") or None,
                width=meta.get("width"),
                height=meta.get("height"),
                cost_usd=float(meta.get("cost_usd") or 0.0),
                attribution=meta.get("attribution"),
            )
            return KeptImage(
                key=path.stem,
                image=image,
                topic=str(meta.get("topic") or ""),
                angle=str(meta.get("angle") or ""),
                hashtags=tuple(str(t) for t in meta.get("hashtags") or ()),
                kept_at=datetime.fromisoformat(meta["kept_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.log.warning("kept_image_unreadable", file=path.name, error=str(exc))
            return None

    def _trim(self) -> None:
        now = self.clock.now()
        kept = self._all()
        stale = [k for k in kept if now - k.kept_at > MAX_AGE]
        fresh = [k for k in kept if now - k.kept_at <= MAX_AGE]
        for k in stale + fresh[: max(0, len(fresh) - MAX_KEPT)]:
            self.discard(k.key)
        # Leftover image bytes whose description never got written (a kill in between).
        if self.dir.is_dir():
            described = {k.key for k in fresh}
            for path in self.dir.glob("*.bin"):
                if path.stem not in described and not path.with_suffix(".json").exists():
                    self.discard(path.stem)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
