"""Glif's failures read by their words: a GPU out of memory is this backend failing (the chain
moves on), not a credits pause; an input complaint in unknown words is not a content refusal
(which would stop the chain); only safety words refuse the prompt. Each text is one of the
emulator's failure modes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from glimpse_agent.clock import SimulatedClock
from glimpse_agent.config import GlifSection, LocalImagesSection
from glimpse_agent.errors import ContentRejected, RateLimited, Rejected, ServiceError, Unavailable
from glimpse_agent.imaging._http import RunFailed
from glimpse_agent.imaging.backends.glif import GlifBackend, classify_error_text
from glimpse_agent.imaging.backends.local import LocalBackend
from glimpse_agent.imaging.base import ImageRequest
from glimpse_agent.imaging.router import ImageRouter
from glimpse_agent.sandbox.images.glif import FAILURE_TEXTS, TOKEN, GlifState

REQ = ImageRequest(prompt="a cat sorcerer", persona="aurora")


class Spend:
    def spent_on(self, day: Any) -> float:
        return 0.0

    def record_spend(self, amount_usd: float, *, backend: str, at: Any) -> None:
        return None


@pytest.fixture
def glif(glif_server: tuple[Starlette, str]) -> Iterator[tuple[GlifState, str]]:
    app, url = glif_server
    state = app.state.glif = GlifState()
    yield state, url
    state.faults.release()


def glif_backend(url: str, http: httpx.AsyncClient, clock: SimulatedClock) -> GlifBackend:
    section = GlifSection(
        token=TOKEN, glif_id="glif-schnell", base_url=url, api_url=f"{url}/api", timeout=5
    )
    return GlifBackend(section, http=http, clock=clock)


@pytest.mark.parametrize(
    ("mode", "kind", "bucket"),
    [
        ("cuda_oom", RunFailed, None),
        ("node_failure", RunFailed, None),
        ("strict_unknown", RunFailed, None),
        ("out_of_credits", RateLimited, "credits"),
        ("rate_limited", RateLimited, None),
        ("nsfw", ContentRejected, None),
    ],
)
async def test_each_failure_text_is_classified_and_run_once(
    glif: tuple[GlifState, str],
    http: httpx.AsyncClient,
    clock: SimulatedClock,
    mode: str,
    kind: type[ServiceError],
    bucket: str | None,
) -> None:
    """Each emulated failure text gives its class; a run failure is not retried here."""
    state, url = glif
    state.faults.arm(mode, times=3)
    with pytest.raises(kind) as info:
        await glif_backend(url, http, clock).generate(REQ)
    assert type(info.value) is kind
    assert getattr(info.value, "bucket", None) == bucket
    if kind is not RateLimited or bucket == "credits":
        assert len(state.faults._queue) == 2  # one run, no second try
    assert FAILURE_TEXTS[mode][:20] in str(info.value)


async def test_cuda_out_of_memory_falls_through_to_the_next_backend(
    glif: tuple[GlifState, str], http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """{"error": "CUDA out of memory"} from Glif: the chain's next backend makes the image,
    Glif's attempt is "unavailable" (not a credits pause, not a refused prompt)."""
    state, url = glif
    state.faults.always("error_200", message="CUDA out of memory")
    router = ImageRouter(
        [glif_backend(url, http, clock), LocalBackend(LocalImagesSection(width=64, height=64))],
        spend=Spend(),
        budget_usd_per_day=1.0,
        clock=clock,
    )
    image = await router.generate(REQ)
    assert image.backend == "local"
    first, second = router.last_attempts
    assert (first.backend, first.outcome) == ("glif", "unavailable")
    assert isinstance(first.cause, Unavailable) and not isinstance(first.cause, RateLimited)
    assert (second.backend, second.outcome) == ("local", "ok")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("CUDA out of memory", RunFailed),
        ("torch.cuda.OutOfMemoryError: out of memory", RunFailed),
        ("Workflow failed: model not found", RunFailed),
        ("inputs do not match this glif", RunFailed),
        ("something went wrong", RunFailed),
        ("You have run out of credits", RateLimited),
        ("Not enough credits to run this glif", RateLimited),
        ("Monthly quota exceeded", RateLimited),
        ("Glif not found: abc", Rejected),
        ("missing input(s) in strict mode: style", Rejected),
        ("Unauthorized: invalid API token", Rejected),
        ("Your prompt violates our content policy", ContentRejected),
    ],
)
def test_classify_error_text_prefers_backend_failure_when_unsure(
    text: str, kind: type[ServiceError]
) -> None:
    """Safety words refuse the prompt; credit words need a credit noun; unknown words are a
    backend failure, never a content refusal."""
    error = classify_error_text(text)
    assert isinstance(error, kind)
    if kind is not ContentRejected:
        assert not isinstance(error, ContentRejected)
    if kind is RunFailed:
        assert not error.retryable and not isinstance(error, RateLimited)
