"""A writable text stream that is a pseudo-terminal or a pipe, for tests of what a command
shows on a terminal and what it leaves out of a pipe."""

from __future__ import annotations

import os
import termios
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def captured_stream(*, terminal: bool) -> Iterator[tuple[TextIO, list[bytes]]]:
    """A writable text stream that is a pseudo-terminal (``terminal``) or a pipe, and the
    bytes that came out the other end (complete once the block has exited)."""
    if terminal:
        reader, writer = os.openpty()
        attrs = termios.tcgetattr(writer)
        attrs[1] |= termios.OPOST | termios.ONLCR  # a terminal's usual "\n" -> "\r\n"
        termios.tcsetattr(writer, termios.TCSANOW, attrs)
    else:
        reader, writer = os.pipe()
    got: list[bytes] = []

    def drain() -> None:  # keep reading, so a full pty or pipe buffer never blocks the writer
        while True:
            try:
                chunk = os.read(reader, 65536)
            except OSError:  # a pty's reader sees EIO once the writer is closed
                break
            if not chunk:
                break
            got.append(chunk)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    stream = open(writer, "w", encoding="utf-8", closefd=True)  # noqa: SIM115
    try:
        yield stream, got
    finally:
        stream.close()
        thread.join(timeout=30)
        os.close(reader)
