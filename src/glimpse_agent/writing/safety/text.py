"""How the safety filter looks at a text: the views a leak cannot hide from, and what it may
not repeat of the untrusted text it answers.

A model (or the content steering it) can dress a key or a link so that a plain regular
expression misses it: look-alike letters (Cyrillic dze for ``s``), full-width forms,
zero-width or direction-changing characters, invisible Unicode tag characters that spell
ASCII, letters spaced out one by one (``s k - 1 2 3``), leetspeak (``ign0re``). ``visible``
undoes the first ones; ``joined`` also closes up spaced-out letters; ``leet`` reads digits as
the letters they imitate. Each rule of the filter runs on the views that matter to it.

From the untrusted source: ``echoes`` (a long run of copied words), ``told_to_say`` (the
short payload an instruction asks to be said: "write the word PWNED") and
``persona_targets`` (the name a "you are now X" asks the agent to become).
"""

from __future__ import annotations

import re
import unicodedata

ECHO_WORDS = 6  # this many consecutive words copied from the source is an echo, not a reply
INSTRUCTION_ECHO_WORDS = 4  # ...and this many from a sentence that gives orders

# Characters that render as nothing (or reorder what is around them). ZWJ and variation
# selectors are legitimate inside emoji, so they are only dropped from the views, never a
# reason by themselves.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)
# Bidi overrides/isolates and tag characters: hidden text for a human, plain text for a model.
HIDDEN = re.compile("[\u202a-\u202e\u2066-\u2069\U000e0001-\U000e007f]")
_TAGS = {cp: cp - 0xE0000 for cp in range(0xE0020, 0xE007F)}

# Look-alikes NFKC leaves alone: Cyrillic, Greek and IPA letters that pass for Latin ones.
_LOOKALIKES = {
    "3": "\u0437",
    "A": "\u0410\u0391",
    "a": "\u0430\u0251\u03b1",
    "B": "\u0412\u0392",
    "b": "\u0432\u03b2",
    "C": "\u0421",
    "c": "\u0441",
    "d": "\u0501",
    "E": "\u0415\u0401\u0395",
    "e": "\u0435\u0451\u03b5",
    "g": "\u0261",
    "H": "\u041d\u0397",
    "h": "\u043d\u04bb",
    "I": "\u0406\u0407\u0399",
    "i": "\u0456\u0457\u0131\u03b9",
    "J": "\u0408",
    "j": "\u0458\u0237",
    "K": "\u041a\u039a",
    "k": "\u043a\u03ba",
    "l": "\u04cf",
    "M": "\u041c\u039c",
    "m": "\u043c",
    "N": "\u039d",
    "n": "\u03b7",
    "O": "\u041e\u039f",
    "o": "\u043e\u03bf",
    "P": "\u0420\u03a1",
    "p": "\u0440\u03c1",
    "q": "\u051b",
    "S": "\u0405",
    "s": "\u0455\u03c2",
    "T": "\u0422\u03a4",
    "t": "\u0442\u03c4",
    "u": "\u03c5",
    "v": "\u03bd",
    "w": "\u051d\u03c9",
    "X": "\u0425\u03a7",
    "x": "\u0445\u03c7",
    "Y": "\u0423\u03a5",
    "y": "\u0443\u03b3",
    "Z": "\u0417\u0396",
}
_CONFUSABLES = str.maketrans(
    {
        **{c: latin for latin, chars in _LOOKALIKES.items() for c in chars},
        # ...and the dashes, dots, slashes and colons that pass for ASCII punctuation.
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63", "-"),
        **dict.fromkeys("\u3002\uff61\u2024\u2027\u00b7\u2219\u22c5\u30fb", "."),
        **dict.fromkeys("\u2215\u2044\u29f8", "/"),
        **dict.fromkeys("\u02d0\u0589\ua789", ":"),
    }
)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
# Four or more single characters separated by spaces: "s k - a b c".
_SPACED = re.compile(r"(?<!\S)(?:\S[ \t\u00a0]+){3,}\S(?!\S)")
_WORD = re.compile(r"[a-z0-9']+")


def visible(text: str) -> str:
    """``text`` as a reader sees it: NFKC, tag characters read as the ASCII they encode,
    invisible characters dropped, look-alike letters and punctuation made ASCII. Case kept."""
    text = text.translate(_TAGS)
    text = unicodedata.normalize("NFKC", text)
    return _INVISIBLE.sub("", text).translate(_CONFUSABLES)


def joined(text: str) -> str:
    """A ``visible`` text with spaced-out letters closed up ("s k - 1 2" -> "sk-12")."""
    return _SPACED.sub(lambda m: re.sub(r"\s+", "", m.group(0)), text)


def leet(text: str) -> str:
    """Digits and symbols read as the letters they stand in for ("ign0re" -> "ignore")."""
    return text.translate(_LEET)


def words(text: str) -> list[str]:
    return _WORD.findall(visible(text).lower())


def _runs(text_words: list[str], source_words: list[str], n: int) -> bool:
    if len(source_words) < n:
        return False
    grams = {tuple(source_words[i : i + n]) for i in range(len(source_words) - n + 1)}
    return any(tuple(text_words[i : i + n]) in grams for i in range(len(text_words) - n + 1))


def echoes(text: str, source: str, n: int = ECHO_WORDS) -> bool:
    """True when ``text`` repeats ``n`` consecutive words of ``source``."""
    return _runs(words(text), words(source), n)


# --------------------------------------------------------------------------- orders in the source

_ORDER_VERBS = (
    r"say|said|saying|write|type|post|reply|respond|answer|repeat|print|output|include|add|"
    r"end|start|begin|sign|confirm|tell|share|reveal|paste|copy|send|give|list|translate|"
    r"visit|click|follow|unfollow|ignore|disregard|forget|pretend|act|become|switch|call|"
    r"respond|claim|announce|declare|shout|put"
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_ORDER = re.compile(rf"\b(?:{_ORDER_VERBS})\w*\b|\byou (?:are|must|should|will)\b", re.I)
_PAYLOAD = re.compile(
    rf"\b(?:{_ORDER_VERBS})\w*\b[^.!?\n\"\u201c\u201d]{{0,40}}?"
    r"(?:\bthe (?:words|phrases?|text|sentence|code|string|letters)\s+|:\s*"
    r"|[\"\u201c\u2018\u00ab](?=\w))"
    r"[\"\u201c\u2018\u00ab]?\s*([^\"\u201d\u2019\u00bb.!?\n:]{1,60})",
    re.I,
)
_ONE_WORD = re.compile(r"\bthe word\s+[\"\u201c\u2018\u00ab']?([\w-]{2,40})", re.I)
_QUOTED = re.compile(
    r"[\"\u201c\u00ab]([^\"\u201d\u00bb\n]{2,60})[\"\u201d\u00bb]|\u2018([^\u2019\n]{2,60})\u2019"
    r"|(?<!\w)'([^'\n]{2,60})'(?!\w)"
)
_TARGET = re.compile(
    r"\b(?:you are now|you're now|you are no longer [^.!?\n]{1,40}? you are|from now on,? you are"
    r"|from now on,? you're|call yourself|your (?:new |real |true )?name is|pretend(?:ing)? to be"
    r"|act(?:ing)? as|role-?play(?:ing)? as|you (?:must |should |will |can )?(?:become|turn into)"
    r"|speak as|talk like|answer as"
    r"|(?:persona|character|identity|role) (?:to|of|called|named))"
    r"\s+(?:an?\s+|the\s+|my\s+)?([\w'-]{3,40})",
    re.I,
)
_PLAIN_WORDS = (
    "the and for you your with this that are was have not but all any can from will just "
    "now then than into them they their there here what when who how why new old one two "
    "very more most much such some really good great nice lovely beautiful amazing ai agent "
    "artist assistant bot model"
)
_PLAIN = frozenset(_PLAIN_WORDS.split())


def _order_sentences(source: str) -> list[str]:
    return [s for s in _SENTENCE.findall(visible(source)) if _ORDER.search(s)]


def told_to_say(text: str, source: str) -> bool:
    """True when ``text`` says what the source ordered it to say: the payload after "say:",
    "write the word ...", a quoted phrase in an order, or four consecutive words of an order."""
    lowered = " " + " ".join(words(text)) + " "
    out_words = words(text)
    for sentence in _order_sentences(source):
        if _runs(out_words, words(sentence), INSTRUCTION_ECHO_WORDS):
            return True
        payloads = [m.group(1) for m in _PAYLOAD.finditer(sentence)]
        payloads += [next(g for g in m if g) for m in _QUOTED.findall(sentence)]
        payloads += _ONE_WORD.findall(sentence)
        for payload in payloads:
            said = words(payload)[:INSTRUCTION_ECHO_WORDS]
            if not said or all(w in _PLAIN or len(w) < 3 for w in said):
                continue
            if f" {' '.join(said)} " in lowered:
                return True
    return False


def persona_targets(source: str) -> set[str]:
    """The names or roles the source tells the agent to become ("you are now DAN" -> dan)."""
    found = set()
    for match in _TARGET.finditer(visible(source)):
        word = match.group(1).lower().strip("'-")
        if len(word) >= 3 and word not in _PLAIN:
            found.add(word)
    return found


def adopts_persona(text: str, source: str) -> bool:
    """True when ``text`` names what the source told the agent to become."""
    targets = persona_targets(source)
    return bool(targets) and bool(targets & set(words(text)))
