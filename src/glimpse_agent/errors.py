"""Our own error hierarchy. Every adapter translates its library's exceptions into these,
at exactly one place, so nothing above an adapter ever sees an ``httpx``/SDK exception.

    GlimpseAgentError
    ├── ConfigError                 bad agent.toml / persona file (CLI exits 2); carries problems
    ├── StateError                  the local state directory
    │   ├── StateLocked             another process holds the state dir
    │   ├── StateCorrupt            the store is unreadable and no good copy exists
    │   ├── StatePermissionDenied   this user may not write the state dir or its lock: a human
    │   │                           must chown it or set state_dir (CLI exits 3)
    │   └── StateUnwritable         disk full, quota, read-only: may pass (CLI exits 4)
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
            │   ├── NotVerified     the key exists but the account is not verified yet
            │   └── KeyRefused      Glimpse refused our own key at start-up (CLI exits 5)
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


class StatePermissionDenied(StateError):
    """The state directory, a file in it or the folder it should be made in cannot be written by
    the user this process runs as (EACCES/EPERM: another owner, a root-owned bind mount, a
    relative ``state_dir`` under a read-only folder). Unlike a full disk it will not pass by
    waiting, so the CLI exits 3 and systemd does not restart. The message names the path, our
    uid, the path's owner and the fix."""

    def __init__(
        self,
        message: str,
        *,
        path: str,
        uid: int,
        owner_uid: int | None = None,
        owner: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.uid = uid
        self.owner_uid = owner_uid
        self.owner = owner


class StateUnwritable(StateError):
    """The state directory cannot be written right now (disk full, quota, read-only): a machine
    fault that may pass, unlike a lock or a damaged store. The previous content is intact.
    ``errno`` is the operating system's error number. (The ledger also raises it for a refused
    permission, EACCES/EPERM; the runner and the CLI tell that one apart: it does not pass.)"""

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


class KeyRefused(Unauthorized):
    """Glimpse refused the persona's own key when the agent started (401/403): the key is
    wrong, revoked or not verified. Waiting or restarting cannot help, so the CLI exits 5 and
    systemd (``RestartPreventExitStatus``) and Compose do not loop. The message says where the
    key was read from and how to fix it, never the key; it names Glimpse itself, so it carries
    no "glimpse: " prefix."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.service = "glimpse"


class Conflict(Rejected):
    """The action was already done (liked twice, followed twice): treat as done, not failed."""


class ContentRejected(Rejected):
    """The service ran but refused or failed on this particular content."""
