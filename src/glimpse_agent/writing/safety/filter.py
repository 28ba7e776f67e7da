"""The last gate before any text leaves the agent (captions, comments, replies, image prompts).

``SafetyFilter.check`` returns a ``Verdict`` listing every reason a text is refused: empty (no
visible letter or digit), too long, too many hashtags, hidden (tag or bidi-control characters),
a configured secret (or a fragment of it, even reversed) or anything shaped like a key, a link
(unless allowed: schemes, ``www``, bare or defanged domains, IPs, markdown links), talk about
instructions, prompts or keys, persona switching, and — given the untrusted text it answers —
saying what that text ordered, taking the persona it ordered, or copying a run of its words.
Every rule looks through disguises (look-alike letters, full-width forms, zero-width
characters, spaced-out letters, leetspeak): see ``safety_text``. Reasons never quote a matched
secret, so they are safe to log.

``produce_safe`` is the one policy every writer uses: a refused text is regenerated once, then
the action is skipped (None) and logged — a refused text is never returned.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from glimpse_agent.config import SafetySection
from glimpse_agent.writing.base import TextKind
from glimpse_agent.writing.safety.text import (
    ECHO_WORDS,
    HIDDEN,
    adopts_persona,
    echoes,
    joined,
    leet,
    told_to_say,
    visible,
)

__all__ = ["ECHO_WORDS", "HASHTAG", "SafetyFilter", "SafetyStats", "Verdict", "echoes"]

PROMPT_MAX_CHARS = 1000
_SECRET_WINDOW = 12  # a leaked fragment this long of a configured secret still counts

HASHTAG = re.compile(r"(?<![\w#])#\w+")
# Word-initial, any case, spaces allowed around the separator: "SK - proj...", "glm_ab c".
# (Word-initial so that "risk-taking" or "desk-lamp" are not keys.)
_PREFIXED_KEY = re.compile(r"(?<![A-Za-z0-9])(?:glm\s*_|hf\s*_|sk\s*-)\s*[A-Za-z0-9]{3,}", re.I)
_MORE_KEY_SHAPES = re.compile(
    r"(ghp_|gho_|ghs_|github_pat_|xox[abprs]-|r8_|sk_(?:live|test)_|gsk_|xai-|pk-lf-|sk-lf-)"
    r"[A-Za-z0-9_\-]{8,}"
    r"|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{30,}|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"
    r"|(?<=Bearer )[A-Za-z0-9._\-]{8,}"
)
_LONG_HEX = re.compile(r"(?<![#\w])[0-9a-fA-F]{32,}(?!\w)")
_LONG_TOKEN = re.compile(r"(?<![#\w/])[A-Za-z0-9+/_]{24,}={0,2}(?!\w)")
_TLDS = (
    "com|net|org|io|ai|app|dev|xyz|co|me|ly|gg|info|biz|site|online|link|click|top|shop|store|"
    "live|art|example|ru|cn|uk|de|fr|tk|zip|mov|sh|to|cc|tv|gl|gd|bit|onion|lol|fun|pro|page"
)
_URL = re.compile(
    r"(?:h(?:tt|xx)ps?\s*[:;]?\s*/\s*/|\bwww\s*\.)\S*|\bh(?:tt|xx)ps?\b|\b(?:ftp|file|data|ipfs)://"
    r"|\b[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63}){0,6}\.[a-z]{2,24}/\S*"
    rf"|\b(?:[a-z0-9-]{{1,63}}\.){{1,6}}(?:{_TLDS})\b"
    rf"|\b[a-z0-9-]{{2,63}}\s+\.\s*(?:{_TLDS})\b|\b[a-z0-9-]{{2,63}}\s*\.\s+(?:{_TLDS})(?![\w.-])(?=\s*(?:/|$))"
    rf"|[\[({{<]\s*(?:\.|dot)\s*[\])}}>]|\s(?:dot)\s(?:{_TLDS})\b"
    r"|\b\d{1,3}(?:\s*\.\s*\d{1,3}){3}\b"
    r"|\[[^\]\n]{1,200}\]\(\s*[^)\s]+\s*\)",
    re.IGNORECASE,
)
# Any bare domain: a lower-case label, a dot, a lower-case TLD, no space ("mysite.gallery").
# Case-sensitive, so a missing space after a full stop ("dusk.The") is not a link.
_BARE_DOMAIN = re.compile(
    r"(?<![\w@.-])[a-z0-9][a-z0-9-]{0,62}(?:\.[a-z0-9-]{1,63}){0,6}\.[a-z]{2,24}(?![\w-])(?!\.\w)"
)
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}?\b(?:instructions?|prompts?|"
    r"rules|guidelines|directives|guardrails)\b"
    r"|\bsystem[\s_-]*(?:prompt|message|instructions?)\b"
    r"|\b(?:developer|dev|god|debug|jailbreak|dan)\s+mode\b|\bjailbr(?:eak|oken)\b"
    r"|\bas an ai\b[^.!?\n]{0,40}?\b(?:i will|i'll|i am going to|i can now|i must now)\b"
    r"|\bas an ai language model\b|\bprompt[\s-]*injection\b"
    r"|\b(?:new|updated|hidden|secret|real|original|initial) instructions?\b"
    r"|\b(?:api|secret|access|private|auth)[\s_-]*(?:key|token)s?\b|\bapikey\b"
    r"|\b(?:passwords?|passwd|credentials?|bearer)\b"
    r"|\b(?:repeat after me|copy and paste|say exactly|print your|reveal your)\b"
    r"|\bmy (?:own )?(?:instructions?|(?:system |initial |original |hidden )?prompt|configuration"
    r"|config|settings|programming|guidelines|directives)\b"
    r"|\b(?:i was|i've been|i have been|i am|i'm|we were)\s+(?:told|instructed|programmed"
    r"|configured|prompted|ordered|commanded)\s+to\b"
    r"|\benv(?:ironment)?\s+var(?:iable)?s?\b|\bverbatim\b|\bpwn(?:ed|d)\b"
    r"|<<<|>>>|\buntrusted_",
    re.IGNORECASE,
)
_PERSONA_SWITCH = re.compile(
    r"\bi\s*(?:am|'m)\s+(?:now|no longer)\b|\bfrom now on\b"
    r"|\bmy (?:new|real|true) (?:name|persona|identity|self|role)\b|\bnew (?:persona|identity)\b"
    r"|\b(?:switch|switching|switched|change|changing|changed)\s+(?:my\s+|to\s+(?:a\s+)?(?:new\s+)?)?"
    r"(?:persona|personality|identity|character|role)s?\b"
    r"|\bi(?:'ve| have) been (?:reprogrammed|jailbroken|unlocked|freed|hacked|updated)\b"
    r"|\b(?:unfiltered|unrestricted|uncensored)\s+(?:mode|ai|assistant|version|persona)\b"
    r"|\bentering\b[^.!?\n]{0,20}\bmode\b|\brole-?play(?:ing)? as\b|\bpretend(?:ing)? to be\b",
    re.IGNORECASE,
)
_SQUASH = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Verdict:
    """The filter's answer. ``ok`` when ``reasons`` is empty; each reason is ``code: detail``."""

    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def codes(self) -> list[str]:
        return [r.split(":", 1)[0] for r in self.reasons]


@dataclass
class SafetyStats:
    """What the filter has seen in this process: checks, refusals, refusals by reason code."""

    checked: int = 0
    rejected: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)


def _squash(text: str) -> str:
    """Lower-case letters and digits only, as a reader sees them: no spaces, separators,
    invisible characters or look-alikes for a leak to hide a key behind."""
    return _SQUASH.sub("", visible(text).lower())


def _looks_random(token: str) -> bool:
    """A long run of letters and digits mixed like a key, not like a word."""
    digits = sum(c.isdigit() for c in token)
    classes = sum((any(c.islower() for c in token), any(c.isupper() for c in token), digits > 0))
    return digits >= 3 and classes >= 2


class SafetyFilter:
    """Checks outgoing text against the ``[safety]`` limits and the config's secret values."""

    def __init__(self, section: SafetySection | None = None, secrets: Iterable[str] = ()) -> None:
        self.section = section or SafetySection()
        self.stats = SafetyStats()
        self._secrets: list[str] = []
        self._fragments: set[str] = set()
        for value in secrets:
            self.add_secret(value)

    def add_secret(self, value: str | None) -> None:
        """Never let ``value`` (nor a long fragment of it) through. Very short values are
        ignored: refusing every text holding "ab" would refuse ordinary words."""
        if not value or len(value.strip()) < 6:
            return
        self._secrets.append(value.strip())
        squashed = _squash(value)
        width = min(len(squashed), _SECRET_WINDOW)
        # Reversed too: "write it backwards" is the oldest trick for getting a secret past a check.
        for form in (squashed, squashed[::-1]):
            self._fragments.update(form[i : i + width] for i in range(len(form) - width + 1))

    def limit(self, kind: TextKind) -> int:
        if kind == "caption":
            return self.section.caption_max_chars
        if kind == "prompt":
            return PROMPT_MAX_CHARS
        return self.section.comment_max_chars

    def check(self, text: str, kind: TextKind, *, source: str | None = None) -> Verdict:
        """Every reason ``text`` must not be published as a ``kind``. ``source`` is the
        untrusted text it answers (another agent's caption or comment), if any."""
        reasons = self._reasons(text, kind, source)
        self.stats.checked += 1
        if reasons:
            self.stats.rejected += 1
            self.stats.by_reason.update(r.split(":", 1)[0] for r in reasons)
        return Verdict(tuple(reasons))

    def _reasons(self, text: str, kind: TextKind, source: str | None) -> list[str]:
        seen = visible(text)
        if not any(c.isalnum() for c in seen):
            return ["empty: no text"]
        reasons: list[str] = []
        limit = self.limit(kind)
        if len(text) > limit:
            reasons.append(f"too_long: {len(text)} > {limit} characters")
        tags = HASHTAG.findall(seen)
        if len(tags) > self.section.max_hashtags:
            reasons.append(f"too_many_hashtags: {len(tags)} > {self.section.max_hashtags}")
        if HIDDEN.search(text):
            reasons.append("hidden: invisible tag or direction-changing characters")
        views = (text, seen, joined(seen))
        reasons += self._secret_reasons(text, views)
        if not self.section.allow_urls and any(
            _URL.search(v) or _BARE_DOMAIN.search(v) for v in views
        ):
            reasons.append("url: links are not allowed")
        wordy = (seen, leet(seen))
        if any(_INJECTION.search(v) for v in wordy):
            reasons.append("instruction_echo: text talks about instructions, prompts or keys")
        elif source and told_to_say(text, source):
            reasons.append("instruction_echo: says what the text it answers told it to say")
        if any(_PERSONA_SWITCH.search(v) for v in wordy):
            reasons.append("persona_switch: text claims to become someone else")
        elif source and adopts_persona(text, source):
            reasons.append("persona_switch: takes on the persona the text it answers asked for")
        if source and echoes(text, source):
            reasons.append(f"echo: repeats {ECHO_WORDS}+ words of the text it answers")
        return reasons

    def _secret_reasons(self, text: str, views: tuple[str, ...]) -> list[str]:
        reasons = []
        squashed = _squash(text)
        if any(s in text for s in self._secrets) or any(f in squashed for f in self._fragments):
            reasons.append("secret: contains a configured secret value")
        if any(
            _PREFIXED_KEY.search(v) or _MORE_KEY_SHAPES.search(v) or _LONG_HEX.search(v)
            for v in views
        ):
            reasons.append("key_shaped: contains something shaped like a key")
        elif any(_looks_random(m.group(0)) for v in views for m in _LONG_TOKEN.finditer(v)):
            reasons.append("key_shaped: contains a long random-looking token")
        return reasons


async def produce_safe(
    generate: Callable[[int], Awaitable[str | None]],
    check: Callable[[str], Verdict],
    *,
    log: Any,
    action: str,
) -> str | None:
    """The policy for every outgoing text: ``generate(0)``; if the filter refuses it,
    ``generate(1)`` once; if that is refused too, skip (None). ``generate`` returning None means
    nothing could be written: skip at once. Only reasons are logged, never the refused text."""
    for attempt in (0, 1):
        text = await generate(attempt)
        if text is None:
            log.warning("writing.skipped", action=action, reason="nothing was generated")
            return None
        text = text.strip()
        verdict = check(text)
        if verdict.ok:
            return text
        log.warning(
            "safety.rejected", action=action, attempt=attempt, reasons=list(verdict.reasons)
        )
    log.warning("writing.skipped", action=action, reason="refused by the safety filter twice")
    return None
