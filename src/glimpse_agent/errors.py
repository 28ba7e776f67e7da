"""Our own error hierarchy. Every adapter translates its library's exceptions into these,
at exactly one place, so nothing above an adapter ever sees an ``httpx``/SDK exception.

    GlimpseAgentError
    ├── ConfigError                 bad agent.toml / persona file (CLI exits 2); carries problems
    ├── StateError                  the local state directory
    │   ├── StateLocked             another process holds the state dir
    │   ├── StateCorrupt            the store is unreadable and no good copy exists
    │   └── StateUnwritable         disk full, read-only, no permission: may pass (CLI exits 4)
    ├── BudgetExceeded              a generation would pass the persona's daily budget
    ├── SafetyRejected              an outgoing text failed the safety filter
    └── ServiceError                a remote service said no, or did not answer
        ├── RateLimited             429: carries retry_after (s) and bucket       retryable
        ├── Unavailable             5xx, timeout, connection failure               retryable
        │   └── NoAnswer            sent, but no usable answer came back (timeout, cut
        │                           answer): a write may have happened
        ├── BadResponse             2xx we cannot understand                       not retryable
        └── Rejected                4xx: the request itself is wrong               not retryable
            ├── Unauthorized        401/403: missing or wrong key (a configuration failure)
            │   └── NotVerified     the key exists but the account is not verified yet
            ├── Conflict            already done (liked twice, followed twice)
            └── ContentRejected     the service ran but refused or failed this content
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta


class GlimpseAgentError(Exception):
    """Base of every error this package raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config file: where, which key, what is expected."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}"


class ConfigError(GlimpseAgentError):
    """A config or persona file is wrong. ``problems`` lists every problem found, not only the
    first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StateError(GlimpseAgentError):
    """Something is wrong with the local state directory."""


class StateLocked(StateError):
    """Another process already runs on this state directory."""


class StateCorrupt(StateError):
    """The store cannot be read and there is no good copy to fall back to."""


class StateUnwritable(StateError):
    """The state directory cannot be written right now (disk full, quota, read-only, no
    permission): a machine fault that may pass, unlike a lock or a damaged store. The
    previous content is intact. ``errno`` is the operating system's error number."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class BudgetExceeded(GlimpseAgentError):
    """Starting this generation would pass the persona's daily spending budget."""


class SafetyRejected(GlimpseAgentError):
    """An outgoing text was refused by the safety filter; ``reasons`` says why."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


class ServiceError(GlimpseAgentError):
    """A remote service failed. ``service`` names it; ``status`` is the HTTP status if any."""

    retryable: bool = False

    def __init__(self, message: str, *, service: str = "", status: int | None = None) -> None:
        self.service = service
        self.status = status
        self.message = message
        prefix = f"{service}: " if service else ""
        super().__init__(f"{prefix}{message}")


class RateLimited(ServiceError):
    """The service said slow down. Wait ``retry_after`` seconds before the same bucket again."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        status: int | None = 429,
        retry_after: float | None = None,
        bucket: str | None = None,
    ) -> None:
        super().__init__(message, service=service, status=status)
        self.retry_after = retry_after
        self.bucket = bucket

    def rest(self, longest: timedelta) -> timedelta | None:
        """How long to leave the service alone: its Retry-After, at most ``longest`` (a
        server's absurd number must not rest it for years); None without one."""
        if self.retry_after is None:
            return None
        seconds = self.retry_after if self.retry_after == self.retry_after else 0.0  # NaN
        return timedelta(seconds=min(max(0.0, seconds), longest.total_seconds()))


class Unavailable(ServiceError):
    """5xx, timeout or connection failure: the same request may work later."""

    retryable = True


class NoAnswer(Unavailable):
    """The request went out but no usable answer came back (a timeout, an answer that broke
    off): the service may have done it. Whoever sends it again must allow for that: Glimpse
    writes are reconciled first, and paid image backends may refuse to (a provider bills the
    run it started)."""


class BadResponse(ServiceError):
    """The service answered 2xx with something we cannot understand."""


class Rejected(ServiceError):
    """4xx: the request itself is wrong; sending it again will not help."""


class Unauthorized(Rejected):
    """Missing or wrong credentials (401/403)."""


class NotVerified(Unauthorized):
    """The Glimpse key exists but the account's e-mail is not verified yet."""


class Conflict(Rejected):
    """The action was already done (liked twice, followed twice): treat as done, not failed."""


class ContentRejected(Rejected):
    """The service ran but refused or failed on this particular content."""
