"""Progress by simulated day for `sandbox` and `simulate`: a ``tqdm`` bar on stderr, fed by
``Simulation``'s ``on_advance``, so a week that takes half a minute is not half a minute of
silence. Off a terminal (a pipe, a log file, CI) it draws nothing at all.

    progress = DayProgress(start, days)          # draws only if stderr is a terminal
    setup_logging(args, level, stream=progress.shared_stream())
    result = await Simulation(agents, clock, on_advance=progress).run(days)
    progress.finish()
"""

from __future__ import annotations

import io
import os
import sys
from datetime import datetime, timedelta
from typing import TextIO, cast

from tqdm import tqdm

DAY = timedelta(days=1)


class DayProgress:
    """A bar of ``days`` simulated days from ``start``; call it with each new simulated instant.
    ``force`` draws even off a terminal (tests)."""

    def __init__(
        self,
        start: datetime,
        days: int,
        *,
        stream: TextIO | None = None,
        force: bool = False,
        label: str = "simulating",
    ) -> None:
        self.start = start
        self.days = days
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = force or _isatty(self.stream)
        self._bar = tqdm(
            total=days,
            desc=label,
            unit="day",
            file=self.stream,
            disable=not self.enabled,
            # A size of 0 x 0 (a fresh pseudo-terminal, `script`) would hide the bar entirely.
            ncols=_size(self.stream).columns,
            nrows=_size(self.stream).lines,
            leave=True,
            bar_format="{desc} {bar} {n_fmt}/{total_fmt} days [{elapsed}]{postfix}",
        )

    def __call__(self, at: datetime) -> None:
        if not self.enabled:
            return
        done = max(0, min(self.days, int((at - self.start) / DAY)))
        self._bar.set_postfix_str(f"{at:%Y-%m-%d %H:%M} UTC", refresh=False)
        if done > self._bar.n:
            self._bar.update(done - self._bar.n)
        else:
            self._bar.refresh()

    def finish(self) -> None:
        """Fill the bar (the run reached its end) and leave it on its own line."""
        if self.enabled and self._bar.n < self.days:
            self._bar.update(self.days - self._bar.n)
        self._bar.close()

    def close(self) -> None:
        """Take the bar down as it stands (an error ended the run); safe after ``finish``."""
        self._bar.close()

    def shared_stream(self) -> TextIO:
        """A stream onto the bar's stream for the log: each line takes the bar's place and the
        bar is drawn again below it, instead of a log line glued to the bar. Off a terminal
        it is the stream itself."""
        if not self.enabled:
            return self.stream
        # An ``io.TextIOBase`` is a text stream; typing's ``TextIO`` just does not know it.
        return cast(TextIO, _SharedStream(self))


class _SharedStream(io.TextIOBase):
    """Writers may send a line in pieces (``print`` writes the text, then the newline): the
    bar is cleared before a line's first piece and drawn again after its newline."""

    def __init__(self, progress: DayProgress) -> None:
        super().__init__()
        self._progress = progress
        self._mid_line = False

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        # Loggers pick their format (colours, JSON or not) from the terminal underneath.
        return _isatty(self._progress.stream)

    def write(self, text: str) -> int:
        if not text:
            return 0
        bar = self._progress._bar
        if not self._mid_line:
            bar.clear()
        self._progress.stream.write(text)
        self._mid_line = not text.endswith("\n")
        if not self._mid_line:
            bar.refresh()
        return len(text)

    def flush(self) -> None:
        self._progress.stream.flush()


def _size(stream: TextIO) -> os.terminal_size:
    """The terminal's size, each side that it does not tell taken as 80 x 24."""
    try:
        columns, lines = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        columns = lines = 0
    return os.terminal_size((columns or 80, lines or 24))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
