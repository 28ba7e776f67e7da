"""The switch that ends an emulator's slow answers early: a test sets ``delay`` to make a
service hang, and releasing it lets the server stop at once instead of waiting them out."""

from __future__ import annotations

import asyncio
import threading

STEP = 0.02  # seconds between looks at the switch


class Release:
    """Set from any thread (the test's); slept on in the server's event loop."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """End every current and future delay."""
        self._event.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` in small steps, waking early once released."""
        for _ in range(int(seconds / STEP)):
            if self._event.is_set():
                return
            await asyncio.sleep(STEP)
