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
from typing import Any

#: Deeper than any answer we read (Glimpse's deepest is ~5 levels); far below the interpreter's
#: recursion limit, so parsing and every later walk of the value stay safe.
MAX_JSON_DEPTH = 64

# A JSON string (escapes included), unrolled so that a long string costs one linear scan.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JsonTooDeep(ValueError):
    """The JSON nests deeper than allowed (a ``ValueError``, as any other unreadable JSON)."""


def too_deep(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when the JSON text ``raw`` nests arrays/objects more than ``max_depth`` deep.

    Strings are blanked out first (a ``"[[["`` inside one is text); then innermost ``[]``/``{}``
    pairs are removed once per level, at most ``max_depth`` times: whatever nesting is left
    after that is deeper. Every step is a C-speed pass over the bytes. Unbalanced brackets are
    not this function's business: ``json.loads`` refuses them."""
    skeleton = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not skeleton:
            return False
        shorter = _PAIR.sub(b"", skeleton)
        if len(shorter) == len(skeleton):
            return False  # unbalanced or mismatched: not nesting, json.loads will say so
        skeleton = shorter
    return bool(_PAIR.search(skeleton))


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
