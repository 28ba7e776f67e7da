"""Text and seed helpers shared by the planner rooms. Pure, stdlib only."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Punctuation and underscores become spaces so "Neon-rain!" and "neon rain" normalise alike.
_NOT_WORD = re.compile(r"[^\w\s]|_")
_WORD = re.compile(r"[^\W_]+")
_HASHTAG = re.compile(r"#([^\W_][\w]*)")

# Words too common to say anything about a post's subject. Kept short on purpose: the point is
# to stop "the" from matching, not to do linguistics.
_STOPWORD_TEXT = """
a an and are as at be but by for from has have in into is it its of on or over so that the their
this to under was were with you your our we my me i not no just very after before first last
one all some more most about
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

# Untrusted text (captions, comments) is only ever tokenised; bounding its length bounds the cost
# of a hostile 10 MB caption. 2,200 is Glimpse's caption limit.
MAX_SCANNED_CHARS = 2200


def stable_int(*parts: str) -> int:
    """A 64-bit integer from ``parts``, identical across processes and Python versions.

    Python's ``hash()`` is salted per process, so it cannot make a restart re-plan the same day.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def normalise(text: str) -> str:
    """Case-folded, NFKC, punctuation to spaces, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NOT_WORD.sub(" ", folded).split())


def stem(word: str) -> str:
    """A deliberately crude plural strip, so "puddles" meets "puddle"."""
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str) -> frozenset[str]:
    """The stemmed, lower-cased content words of ``text`` (first ``MAX_SCANNED_CHARS`` only)."""
    folded = unicodedata.normalize("NFKC", text[:MAX_SCANNED_CHARS]).casefold()
    return frozenset(stem(w) for w in _WORD.findall(folded) if len(w) >= 3 and w not in STOPWORDS)


def hashtags_in(text: str) -> frozenset[str]:
    """Hashtags written inside ``text``, without '#', case-folded."""
    folded = unicodedata.normalize("NFKC", text[:MAX_SCANNED_CHARS]).casefold()
    return frozenset(_HASHTAG.findall(folded))


def tag_key(tag: str) -> str:
    """A hashtag as a comparable key: no '#', NFKC, case-folded."""
    return unicodedata.normalize("NFKC", tag.strip().lstrip("#")).casefold()
