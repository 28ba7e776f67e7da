"""`glimpse-agent check -c agent.toml`: validate the config, then reach Glimpse with the key,
every configured image backend and every caption source (and the LLM), and say for each whether
it is usable. Exit 0 only if every one passes.

Read-only by design, so it can run next to the daemon: no state-dir lock, no ledger (the image
router gets an in-memory spend book it never writes to), no write to Glimpse, no image made.
Every service gets ``seconds_each`` to answer; the three groups (Glimpse, images, captions) run
concurrently. Reasons come from our own error messages, then pass through the redaction of every
configured secret, so a service echoing a key cannot make ``check`` print it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import httpx

from glimpse_agent.clock import Clock, SystemClock
from glimpse_agent.commands._common import load
from glimpse_agent.config import KEY_FILE_NAME, AgentConfig, LoadedAgent, secret_values
from glimpse_agent.errors import (
    BadResponse,
    ConfigError,
    NotVerified,
    RateLimited,
    Rejected,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.glimpse import GlimpseClient
from glimpse_agent.imaging import build_router
from glimpse_agent.imaging.retired import retired_model_warnings
from glimpse_agent.redaction import scrub
from glimpse_agent.writing import build_writing

SECONDS_EACH = 20.0  # per service; `check` never waits longer on one
MAX_REASON = 400


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: ``item`` is usable (``error is None``) or why not."""

    item: str
    detail: str = ""
    error: str | None = None
    #: Usable, but something the user should know (a model known to be retired).
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class NoSpend:
    """A spend book for a router that never generates: nothing spent, nothing recorded."""

    def spent_on(self, day: date) -> float:
        return 0.0

    def record_spend(self, amount_usd: float, *, backend: str, at: datetime) -> None:
        return None


# --------------------------------------------------------------------------- reasons


def one_line(text: str, secrets: Iterable[str]) -> str:
    """``text`` scrubbed of ``secrets`` and key shapes (``redaction.scrub``), on one line and at
    most ``MAX_REASON`` characters: a report line."""
    text = " ".join(scrub(text, secrets).split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def reason(exc: BaseException) -> str:
    """Why a check failed, from our error: its kind, then its message (the service is named by
    the line already)."""
    if isinstance(exc, ConfigError):
        return "configuration: " + "; ".join(p.message for p in exc.problems)
    if not isinstance(exc, ServiceError):
        # A bug or an SDK exception that escaped translation: name it, never hide it.
        return f"{type(exc).__name__}: {exc}"
    message = exc.message or type(exc).__name__
    if isinstance(exc, RateLimited):
        wait = f", retry in {exc.retry_after:.0f} s" if exc.retry_after is not None else ""
        return f"rate limited{wait}: {message}"
    if isinstance(exc, NotVerified):
        return f"not verified: {message}"
    if isinstance(exc, Unauthorized):
        return f"key refused: {message}"
    if isinstance(exc, Unavailable):
        return f"unavailable: {message}"
    if isinstance(exc, BadResponse):
        return f"unexpected answer: {message}"
    if isinstance(exc, Rejected):
        return f"refused: {message}"
    return message


# --------------------------------------------------------------------------- the checks


def state_dir_problem(path: Path) -> str | None:
    """Why the daemon could not use ``path`` as its state directory, or ``None``. Read-only:
    a directory that does not exist yet is fine if its nearest existing parent is writable."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"state_dir {path}: {probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == path else f"cannot be created ({probe} is read-only)"
        return f"state_dir {path} {what}"
    return None


async def check_glimpse(config: AgentConfig, client: GlimpseClient | None) -> CheckResult:
    """``GET /agents/me`` with the key: the agent's name, and whether it is verified."""
    key_file = config.state_dir / KEY_FILE_NAME
    source = "glimpse.api_key" if config.glimpse.api_key is not None else str(key_file)
    verify = f"glimpse-agent verify --code NNNNNN -c {config.source}"
    if client is None:
        return CheckResult(
            "glimpse",
            error=f"no key: set glimpse.api_key (or api_key_file), or run `glimpse-agent "
            f"register -c {config.source}` to store one in {key_file}",
        )
    try:
        me = await client.me()
    except NotVerified as exc:
        return CheckResult(
            "glimpse",
            error=f"{reason(exc)}; run `{verify}` with the code mailed to the owner",
        )
    except Unauthorized as exc:
        return CheckResult("glimpse", error=f"{reason(exc)} (the key comes from {source})")
    except Exception as exc:
        return CheckResult("glimpse", error=reason(exc))
    name = me.name or me.id
    if not me.is_verified:
        return CheckResult(
            "glimpse",
            error=f"{name} is not verified: writes will be refused until you run `{verify}` "
            "with the code mailed to the owner",
        )
    return CheckResult("glimpse", f"{name} (verified)")


def _label(source: str) -> str:
    return "llm" if source == "llm" else f"captions.{source}"


def describe(config: AgentConfig, item: str) -> str:
    """What a passing line shows: which flow, model or deployment was reached."""
    images, langflow, llm = config.images, config.captions.langflow, config.llm
    if item == "images.glif" and images.glif is not None:
        return f"glif {images.glif.glif_id}"
    if item == "images.viewcomfy" and images.viewcomfy is not None:
        vc = images.viewcomfy
        via = " through ViewComfy's workflow API" if vc.api == "workflow" else ""
        return f"{vc.url}{via} (credentials verified with {httpx.URL(vc.api_url).host})"
    if item == "images.glimpse" and images.glimpse is not None:
        # Reading the settings proves the Glimpse key; only a generation would prove the
        # provider key, and it would spend one of the day's six.
        return f"{images.glimpse.provider} ({images.glimpse.mode}; provider key not checked)"
    if item == "images.huggingface" and images.huggingface is not None:
        section = images.huggingface
        if section.base_url:
            return f"{section.model} at a custom endpoint (token not checked: no free call)"
        return f"{section.model} via {section.provider}"
    if item == "images.openai" and images.openai is not None:
        return images.openai.model
    if item == "images.local":
        return "offline generator"
    if item == "captions.langflow" and langflow is not None:
        return f"flow {langflow.flow} at {langflow.base_url}"
    if item == "llm" and llm is not None:
        return f"{llm.model} at {llm.base_url}"
    if item == "captions.glimpse":
        return "Glimpse's caption suggestions (with the Glimpse key)"
    if item == "captions.template":
        return "built in"
    return ""


#: Where the key of each item lives in agent.toml, for "key refused" lines.
KEY_NAMES = {
    "images.glif": "images.glif.token",
    "images.viewcomfy": "images.viewcomfy.client_id and client_secret",
    "images.glimpse": "glimpse.api_key (the Glimpse key)",
    "images.huggingface": "images.huggingface.token",
    "images.openai": "images.openai.api_key",
    "captions.langflow": "captions.langflow.api_key",
    "llm": "llm.api_key",
}


def _line(config: AgentConfig, item: str, error: Exception | None) -> CheckResult:
    if error is None:
        return CheckResult(item, describe(config, item))
    text = reason(error)
    key_name = KEY_NAMES.get(item)
    if isinstance(error, Unauthorized) and key_name and key_name.split()[0] not in text:
        text += f" (check {key_name})"
    return CheckResult(item, error=text)


async def _within(
    name: str, seconds: float, results: Awaitable[dict[str, Exception | None]]
) -> dict[str, Exception | None]:
    """A whole group's results, or the group failing as one when it passes its deadline."""
    try:
        async with asyncio.timeout(seconds):
            return await results
    except TimeoutError:
        return {name: Unavailable(f"no answer within {seconds:g} s", service=name)}


async def _glimpse_within(
    config: AgentConfig, client: GlimpseClient | None, seconds: float
) -> CheckResult:
    try:
        async with asyncio.timeout(seconds):
            return await check_glimpse(config, client)
    except TimeoutError:
        return CheckResult("glimpse", error=f"unavailable: no answer within {seconds:g} s")


async def run_checks(
    loaded: LoadedAgent,
    *,
    seconds_each: float = SECONDS_EACH,
    clock: Clock | None = None,
) -> list[CheckResult]:
    """Every check for ``loaded``, in report order: Glimpse, images (in ``images.order``),
    captions (in ``captions.order``), the LLM. Raises ``ConfigError`` only for a config the
    backends cannot even be built from (exit 2)."""
    config, persona = loaded.config, loaded.persona
    clock = clock or SystemClock()
    key = config.glimpse_key()
    secrets = secret_values(config)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(seconds_each, connect=min(10.0, seconds_each)),
        follow_redirects=True,
    ) as http:
        # Keyless when there is no key, so the glimpse image backend reports the refusal itself.
        client = GlimpseClient(
            config.glimpse.base_url,
            key,
            http=http,
            timeout=min(config.glimpse.timeout, seconds_each),
            clock=clock,
        )
        router = build_router(
            config,
            persona,
            spend=NoSpend(),
            clock=clock,
            state_dir=config.state_dir,
            http=http,
            glimpse=client,
        )
        try:
            writing = build_writing(config, persona, glimpse=client, http=http, secrets=secrets)
        except BaseException:
            await router.aclose()
            raise
        try:
            # The router checks its backends one after another, each within seconds_each.
            images_budget = seconds_each * max(1, len(router.backends)) + 1
            glimpse, image_results, caption_results = await asyncio.gather(
                _glimpse_within(config, client if key else None, seconds_each),
                _within("images", images_budget, router.check(seconds_each=seconds_each)),
                _within("captions", seconds_each + 1, writing.check(seconds_each=seconds_each)),
            )
        finally:
            await writing.aclose()
            await router.aclose()
    results = [glimpse]
    results += [_line(config, f"images.{name}", err) for name, err in image_results.items()]
    results += [_line(config, _label(name), err) for name, err in caption_results.items()]
    if not glimpse.ok:
        results = [_depends_on_glimpse(r) for r in results]
    warnings = retired_model_warnings(config.images)
    return [
        CheckResult(
            r.item,
            one_line(r.detail, secrets),
            None if r.ok else one_line(r.error or "", secrets),
            warning=one_line(warnings[r.item], secrets) if r.item in warnings else None,
        )
        for r in results
    ]


def _depends_on_glimpse(result: CheckResult) -> CheckResult:
    """Glimpse's caption suggestions have no check of their own: they stand or fall with it."""
    if result.item == "captions.glimpse" and result.ok:
        return CheckResult(result.item, error="needs Glimpse (see the glimpse line)")
    return result


# --------------------------------------------------------------------------- the report


def render(results: Sequence[CheckResult], *, config: str = "") -> list[str]:
    """The report lines: ``ok      glimpse      aurora (verified)``, then a summary. A usable
    item with a warning reads ``warn``, its warning after its detail; warnings do not fail."""
    width = max([13, *(len(r.item) + 2 for r in results)])
    lines = []
    for r in results:
        status = "FAILED" if not r.ok else "warn" if r.warning else "ok"
        text = r.detail if r.ok else (r.error or "")
        if r.warning:
            text = f"{text}; warning: {r.warning}" if text else f"warning: {r.warning}"
        lines.append(f"{status:<8}{r.item:<{width}}{text}".rstrip())
    failed = [r.item for r in results if not r.ok]
    warned = [r.item for r in results if r.ok and r.warning]
    where = f" for {config}" if config else ""
    if failed:
        lines.append(f"{len(failed)} of {len(results)} checks failed{where}: {', '.join(failed)}")
    else:
        note = f" ({len(warned)} with warnings: {', '.join(warned)})" if warned else ""
        lines.append(f"all {len(results)} checks passed{where}{note}")
    return lines


async def main(args: argparse.Namespace) -> int:
    loaded = load(args)  # a bad config raises ConfigError: exit 2 before anything is reached
    config = loaded.config
    results = [
        CheckResult(
            "config",
            f"{config.source} (persona {loaded.persona.name})",
            error=state_dir_problem(config.state_dir),
        ),
        *await run_checks(loaded, seconds_each=SECONDS_EACH),
    ]
    for line in render(results):
        print(line, flush=True)
    return 0 if all(r.ok for r in results) else 1
