"""Keeps secrets out of logs, exception text and reprs.

Two nets: every secret value loaded from config is registered here and replaced wherever it
appears; and anything *shaped* like a key (``glm_…``, ``hf_…``, ``sk-…``) or stored under a key
*named* like a secret is masked even if we never saw it before. ``scrub`` adds a third for text
about one request: the secrets that request carried, in whatever quoting they came back.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

_SECRET_NAME = re.compile(
    r"(^|[_-])(api[_-]?key|token|secret|password|passwd|authorization|auth|credential|"
    r"client[_-]?secret|x[_-]image[_-]key|x[_-]api[_-]key|cookie)s?($|[_-])",
    re.IGNORECASE,
)
# Shapes of keys from the services we talk to, plus generic bearer tokens in headers.
KEY_SHAPES = re.compile(
    r"(glm_[A-Za-z0-9_\-]{6,}|hf_[A-Za-z0-9]{6,}|sk-[A-Za-z0-9_\-]{6,}|"
    r"(?<=Bearer )[A-Za-z0-9._\-]{8,})"
)

# Credentials inside URLs: the password of ``scheme://user:password@host``, and the value of a
# query parameter named like a secret (Langflow takes ``?x-api-key=``).
_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@]+):[^/\s@]+(?=@)")
_QUERY_SECRET = re.compile(
    r"(?<=[?&;])([^=&\s#;]*(?:key|token|secret|password|passwd|auth|signature)"
    r"[^=&\s#;]*=)[^&\s#;\"'<>]+",
    re.IGNORECASE,
)

_lock = threading.Lock()
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember ``value`` so it is masked wherever it shows up. Short values are ignored
    (masking "ab" everywhere would mangle ordinary words)."""
    global _pattern
    if not value or len(value) < 6:
        return
    with _lock:
        if value in _known:
            return
        _known.add(value)
        alternatives = sorted(_known, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in alternatives))


def forget_all_secrets() -> None:
    """For tests: drop every registered value."""
    global _pattern
    with _lock:
        _known.clear()
        _pattern = None


def is_secret_name(name: str) -> bool:
    """True for keys such as ``api_key``, ``X-Image-Key``, ``client_secret``, ``token``."""
    return bool(_SECRET_NAME.search(name))


def redact_text(text: str) -> str:
    """``text`` with every registered secret and every key-shaped string masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _URL_PASSWORD.sub(rf"\1:{MASK}", text)
    text = _QUERY_SECRET.sub(rf"\1{MASK}", text)
    return KEY_SHAPES.sub(MASK, text)


def redact(value: Any, *, name: str = "") -> Any:
    """Redact a log value recursively: by its key name, then by content."""
    if name and is_secret_name(name) and value not in (None, "", False, True):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, name=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


# A short value is masked only where it stands alone: "k" as a key must not turn "known" into
# "***nown", but "key=k" still hides it.
_MIN_ANYWHERE = 6
_TOKEN_EDGE = r"A-Za-z0-9_\-"


def mask_values(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with each of ``secrets`` replaced by ``***``: anywhere for values of six or
    more characters, as a whole token for shorter ones (longest first, so a secret containing
    another is masked whole)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if len(secret) >= _MIN_ANYWHERE:
            text = text.replace(secret, MASK)
        else:
            token = rf"(?<![{_TOKEN_EDGE}]){re.escape(secret)}(?![{_TOKEN_EDGE}])"
            text = re.sub(token, MASK, text)
    return text


def quoted_forms(secret: str) -> set[str]:
    """How a secret may show up in an error text: as is, or escaped by ``repr`` of a str or of
    bytes (h11 quotes an illegal header value as bytes)."""
    return {secret, repr(secret)[1:-1], repr(secret.encode("utf-8", "replace"))[2:-1]}


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without any of ``secrets`` (in any of their ``quoted_forms``), any registered
    secret, credentials in URLs, or anything shaped like a key: for error texts that may quote
    the request (a server's echo, an ``httpx`` message about a header)."""
    forms = {form for secret in secrets if secret for form in quoted_forms(secret)}
    return redact_text(mask_values(text, forms))
