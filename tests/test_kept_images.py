"""Images made but not posted: kept in the state dir (0600), bounded in number and age, and
read back whole; a damaged one is dropped, never posted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from glimpse_agent.agent.kept import KEPT_DIR, MAX_AGE, MAX_KEPT, ImageKeeper
from glimpse_agent.clock import SimulatedClock, utc
from glimpse_agent.imaging import GeneratedImage

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _image(n: int, *, url: bool = False) -> GeneratedImage:
    if url:
        return GeneratedImage("glimpse", "m", f"prompt {n}", url=f"https://x.example/{n}.png")
    return GeneratedImage("openai", "gpt-image-1", f"prompt {n}", data=PNG, mime_type="image/png")


def test_kept_images_come_back_whole_oldest_first_and_private(tmp_path: Path) -> None:
    clock = SimulatedClock(utc(2026, 5, 1, 9))
    keeper = ImageKeeper(tmp_path, clock)
    first = keeper.keep(_image(1), topic="fog", angle="low", hashtags=("#skies",))
    clock.advance(60)
    keeper.keep(_image(2, url=True), topic="rain", angle="high", hashtags=())
    files = list((tmp_path / KEPT_DIR).iterdir())
    assert files and all(p.stat().st_mode & 0o777 == 0o600 for p in files)

    oldest = keeper.oldest()
    assert oldest is not None and oldest.key == first
    assert (oldest.image.data, oldest.image.prompt, oldest.topic, oldest.hashtags) == (
        PNG,
        "prompt 1",
        "fog",
        ("#skies",),
    )
    keeper.discard(first)
    second = keeper.oldest()
    assert second is not None and second.image.url == "https://x.example/2.png"
    keeper.discard_prompt("prompt 2")
    assert keeper.oldest() is None


def test_at_most_three_are_kept_and_none_older_than_a_day(tmp_path: Path) -> None:
    clock = SimulatedClock(utc(2026, 5, 1, 9))
    keeper = ImageKeeper(tmp_path, clock)
    for n in range(MAX_KEPT + 2):
        keeper.keep(_image(n), topic="t", angle="a", hashtags=())
        clock.advance(60)
    assert len(list((tmp_path / KEPT_DIR).glob("*.json"))) == MAX_KEPT
    oldest = keeper.oldest()
    assert oldest is not None and oldest.image.prompt == "prompt 2"  # the oldest two went
    clock.advance(MAX_AGE + timedelta(minutes=1))
    assert keeper.oldest() is None
    assert list((tmp_path / KEPT_DIR).iterdir()) == []


def test_a_damaged_kept_image_is_dropped(tmp_path: Path) -> None:
    clock = SimulatedClock(utc(2026, 5, 1, 9))
    keeper = ImageKeeper(tmp_path, clock)
    key = keeper.keep(_image(1), topic="t", angle="a", hashtags=())
    (tmp_path / KEPT_DIR / f"{key}.bin").unlink()  # its bytes are gone
    assert keeper.oldest() is None
    assert list((tmp_path / KEPT_DIR).iterdir()) == []
