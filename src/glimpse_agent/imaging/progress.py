"""A progress bar for interactive commands: a ``ProgressCallback`` that redraws one terminal
line as a long-running backend (ViewComfy with ``logs = true``) reports its percentage.

    bar = ProgressBar(sys.stderr)            # only draws if the stream is a terminal
    router = build_router(..., progress=bar)
    image = await router.generate(request)
    bar.finish()

The daemon does not use it: there the backend logs a line every 25 %. The backend logs those
lines with a bar too, so a command that logs to the bar's terminal logs through
``bar.shared_stream()``: each log line then replaces the bar, which is drawn again below it,
instead of being glued to the end of the bar's line.
"""

from __future__ import annotations

import io
from typing import TextIO, cast

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
        self._percent = 0.0

    def __call__(self, percent: float, line: str) -> None:
        if not self.enabled:
            return
        shown = round(max(0.0, min(100.0, percent)))
        if shown == self._shown:
            return
        self._shown, self._percent = shown, percent
        self._redraw()

    def finish(self) -> None:
        """End the bar's line (if one was drawn) so later output starts on a fresh line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._shown = None

    def shared_stream(self) -> TextIO:
        """A stream onto the bar's own stream for other output (the log): while a bar is
        drawn, each line written here takes the bar's place and the bar is drawn again below
        it. With no bar drawn it passes text through unchanged."""
        # An ``io.TextIOBase`` is a text stream; typing's ``TextIO`` just does not know it.
        return cast(TextIO, _SharedStream(self))

    @property
    def _drawn(self) -> bool:
        return self.enabled and self._shown is not None

    def _redraw(self) -> None:
        if self._drawn:
            self.stream.write("\r" + render(self._percent))
            self.stream.flush()

    def _clear(self) -> None:
        # Back to the start of the bar's line and erase it (ANSI "erase to end of line").
        if self._drawn:
            self.stream.write("\r\x1b[K")


class _SharedStream(io.TextIOBase):
    """What ``ProgressBar.shared_stream`` returns. Writers may send a line in pieces (``print``
    writes the text, then the newline): the bar is erased before a line's first piece and drawn
    again after its newline."""

    def __init__(self, bar: ProgressBar) -> None:
        super().__init__()
        self._bar = bar
        self._mid_line = False

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        # Loggers pick their format (colours, JSON or not) from the terminal underneath.
        return _isatty(self._bar.stream)

    def write(self, text: str) -> int:
        if not text:
            return 0
        if not self._mid_line:
            self._bar._clear()
        self._bar.stream.write(text)
        self._mid_line = not text.endswith("\n")
        if not self._mid_line:
            self._bar._redraw()
        return len(text)

    def flush(self) -> None:
        self._bar.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
