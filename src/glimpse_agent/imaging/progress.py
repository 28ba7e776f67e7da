"""A progress bar for interactive commands: a ``ProgressCallback`` that redraws one terminal
line as a long-running backend (ViewComfy with ``logs = true``) reports its percentage.

    bar = ProgressBar(sys.stderr)            # only draws if the stream is a terminal
    router = build_router(..., progress=bar)
    image = await router.generate(request)
    bar.finish()

The daemon does not use it: there the backend logs a line every 25 %.
"""

from __future__ import annotations

from typing import TextIO

WIDTH = 30


def render(percent: float, width: int = WIDTH) -> str:
    """``"image [#########.....................]  30%"`` for ``percent`` (clamped to 0..100)."""
    percent = max(0.0, min(100.0, percent))
    filled = round(width * percent / 100)
    return f"image [{'#' * filled}{'.' * (width - filled)}] {percent:3.0f}%"


class ProgressBar:
    """Draws the bar on ``stream``, redrawing only when the shown percentage changes.

    ``force`` draws even when the stream is not a terminal (tests, ``--progress``); otherwise
    a non-terminal stream (a log file, a pipe) gets nothing.
    """

    def __init__(self, stream: TextIO, *, force: bool = False) -> None:
        self.stream = stream
        self.enabled = force or _isatty(stream)
        self._shown: int | None = None

    def __call__(self, percent: float, line: str) -> None:
        if not self.enabled:
            return
        shown = round(max(0.0, min(100.0, percent)))
        if shown == self._shown:
            return
        self._shown = shown
        self.stream.write("\r" + render(percent))
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line (if one was drawn) so later output starts on a fresh line."""
        if self.enabled and self._shown is not None:
            self.stream.write("\n")
            self.stream.flush()
        self._shown = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
