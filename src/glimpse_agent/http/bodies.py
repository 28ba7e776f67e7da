"""JSON answers parsed with a depth limit.

``json.loads`` recurses once per nesting level: ``[[[[...]]]]`` 200,000 deep is a
``RecursionError`` (not a ``ValueError``, so every ``except ValueError`` around a parse lets it
through as a traceback), and a few thousand levels that do parse make every later walk of the
value (pydantic, ``json.dumps`` in a log line) recurse as deep. No answer we read nests more than
a dozen levels, so anything past ``MAX_JSON_DEPTH`` is refused before it is parsed.

Size is limited where the body is read (``safe.read_capped``), before any of this runs.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

#: Deeper than any answer we read (Glimpse's deepest is ~5 levels); far below the interpreter's
#: recursion limit, so parsing and every later walk of the value stay safe.
MAX_JSON_DEPTH = 64

# A JSON string (escapes included), unrolled so that a long string costs one linear scan.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# How each byte of the bracket skeleton changes the depth.
_STEP = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _STEP[_open], _STEP[_close] = 1, -1


class JsonTooDeep(ValueError):
    """The JSON nests deeper than allowed (a ``ValueError``, as any other unreadable JSON)."""


def too_deep(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when the JSON text ``raw`` nests arrays/objects more than ``max_depth`` deep.

    Strings are blanked out first (a ``"[[["`` inside one is text); the depth is then the
    highest running sum of +1 per opening and -1 per closing bracket, all in C-speed passes.
    Unbalanced brackets are not this function's business: ``json.loads`` refuses them."""
    skeleton = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, skeleton)), default=0) > max_depth


def parse_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads(raw)``, refusing nesting deeper than ``max_depth`` (``JsonTooDeep``).
    Raises only ``ValueError`` (``UnicodeDecodeError`` and ``json.JSONDecodeError`` are ones)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if too_deep(data, max_depth):
        raise JsonTooDeep(f"the JSON nests deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except RecursionError:  # belt and braces: a parse deeper than the stack allows
        raise JsonTooDeep("the JSON nests too deep to read") from None
