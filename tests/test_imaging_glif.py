"""The Glif backend against the Glif emulator over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from glimpse_agent.clock import SimulatedClock
from glimpse_agent.config import GlifSection
from glimpse_agent.errors import (
    BadResponse,
    ContentRejected,
    RateLimited,
    Rejected,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.imaging.backends.glif import (
    ATTRIBUTION,
    ForbiddenModel,
    GlifBackend,
    forbidden_models_in,
)
from glimpse_agent.imaging.base import ImageRequest
from glimpse_agent.imaging.prepare import sniff_mime
from glimpse_agent.sandbox.images.glif import TOKEN, GlifState


class Glif:
    def __init__(self, state: GlifState, url: str) -> None:
        self.state = state
        self.url = url

    def section(self, **overrides: Any) -> GlifSection:
        values: dict[str, Any] = {
            "token": TOKEN,
            "glif_id": "glif-schnell",
            "base_url": self.url,
            "api_url": f"{self.url}/api",
            "timeout": 5,
        }
        values.update(overrides)
        return GlifSection.model_validate(values)


@pytest.fixture
def glif(glif_server: tuple[Starlette, str]) -> Iterator[Glif]:
    app, url = glif_server
    state = app.state.glif = GlifState()
    yield Glif(state, url)
    state.faults.release()


def backend(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock, **overrides: Any
) -> GlifBackend:
    return GlifBackend(glif.section(**overrides), http=http, clock=clock)


REQ = ImageRequest(prompt="a cat sorcerer", persona="aurora")


async def test_run_returns_the_image_url_with_size_and_attribution(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A run yields the emulator's PNG URL, its size and the "powered by glif.app" line."""
    image = await backend(glif, http, clock).generate(REQ)
    assert image.url is not None and image.url.startswith(glif.url + "/images/")
    assert (image.width, image.height) == (512, 512)
    assert image.attribution == ATTRIBUTION
    assert image.backend == "glif" and image.model == "glif:glif-schnell"
    assert image.cost_usd == 0.0 and image.timings["total"] >= 0
    fetched = await http.get(image.url)
    assert sniff_mime(fetched.content) == "image/png"
    assert glif.state.runs == [
        {
            "id": "glif-schnell",
            "inputs": {"prompt": "a cat sorcerer"},
            "strict": True,
            "raw_inputs": ["a cat sorcerer"],
        }
    ]


async def test_attribution_can_be_turned_off(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """attribution = false leaves GeneratedImage.attribution empty."""
    image = await backend(glif, http, clock, attribution=False).generate(REQ)
    assert image.attribution is None


async def test_named_prompt_input_merges_extra_inputs(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A block name puts the prompt there and sends the extra named inputs alongside."""
    await backend(
        glif,
        http,
        clock,
        glif_id="glif-two-inputs",
        prompt_input="subject",
        inputs={"style": "ukiyo-e"},
    ).generate(REQ)
    assert glif.state.runs[0]["raw_inputs"] == {"style": "ukiyo-e", "subject": "a cat sorcerer"}


async def test_positional_prompt_input_is_resolved_to_the_block_name(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """prompt_input = 1 fills the second input block, by its name, keeping named extras."""
    await backend(
        glif, http, clock, glif_id="glif-two-inputs", prompt_input=1, inputs={"subject": "a heron"}
    ).generate(REQ)
    assert glif.state.runs[0]["raw_inputs"] == {"subject": "a heron", "style": "a cat sorcerer"}


async def test_strict_mode_refuses_missing_inputs(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """With strict on, a missing input is Glif's 200-with-error, surfaced as a configuration
    failure (Rejected, so the router tries the next backend), not as a refused prompt."""
    with pytest.raises(Rejected, match="missing input") as info:
        await backend(glif, http, clock, glif_id="glif-two-inputs").generate(REQ)
    assert not isinstance(info.value, ContentRejected)
    assert len(glif.state.runs) == 0


async def test_non_strict_mode_lets_glif_fill_defaults(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """strict = false omits ?strict=1 and the glif's default fills the missing input."""
    await backend(glif, http, clock, glif_id="glif-two-inputs", strict=False).generate(REQ)
    assert glif.state.runs[0]["inputs"] == {"subject": "a cat sorcerer", "style": "woodcut"}
    assert glif.state.runs[0]["strict"] is False


async def test_error_with_http_200_is_content_rejected_and_not_retried(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """HTTP 200 + "error" is a content failure: raised at once, the glif ran no second time."""
    glif.state.faults.arm("error_200", message="NSFW content detected", times=3)
    with pytest.raises(ContentRejected, match="NSFW"):
        await backend(glif, http, clock).generate(REQ)
    assert len(glif.state.faults._queue) == 2  # exactly one request used up a fault


async def test_error_200_about_credits_is_a_rate_limit(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """Running out of credits is reported as RateLimited(bucket="credits"), not retried."""
    glif.state.credits = 0
    with pytest.raises(RateLimited) as info:
        await backend(glif, http, clock).generate(REQ)
    assert info.value.bucket == "credits"


async def test_429_is_retried_after_retry_after(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A 429 with Retry-After: 7 is retried after sleeping 7 s of the injected clock."""
    glif.state.faults.arm("status", status=429, retry_after=7)
    before = clock.now()
    image = await backend(glif, http, clock).generate(REQ)
    assert image.url and (clock.now() - before).total_seconds() == 7
    assert len(glif.state.runs) == 1


async def test_5xx_is_retried_with_backoff_then_gives_up(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """Three 503s in a row: two backoff sleeps (1 s, 2 s), then Unavailable."""
    glif.state.faults.arm("status", status=503, times=3)
    before = clock.now()
    with pytest.raises(Unavailable):
        await backend(glif, http, clock).generate(REQ)
    assert (clock.now() - before).total_seconds() == 3


async def test_hang_times_out_as_unavailable(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A glif that does not answer within timeout fails as Unavailable (retried, then given up)."""
    glif.state.faults.always("hang", seconds=5)
    with pytest.raises(Unavailable, match="timed out"):
        await backend(glif, http, clock, timeout=0.05).generate(REQ)


async def test_wrong_token_is_unauthorized(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A token the service does not know is Unauthorized, and the message hides the token."""
    with pytest.raises(Unauthorized) as info:
        await backend(glif, http, clock, token="not-the-token-123456", check_models=False).generate(
            REQ
        )
    assert "not-the-token" not in str(info.value)


async def test_unknown_glif_is_a_configuration_failure(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """An unknown glif id is Rejected, not ContentRejected, with or without the screen."""
    with pytest.raises(Rejected) as info:
        await backend(glif, http, clock, glif_id="nope").generate(REQ)
    assert not isinstance(info.value, ContentRejected)
    with pytest.raises(Rejected) as info:
        await backend(glif, http, clock, glif_id="nope", check_models=False).generate(REQ)
    assert not isinstance(info.value, ContentRejected)


async def test_text_glif_is_a_bad_response(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A glif whose output is TEXT cannot make a post: BadResponse."""
    with pytest.raises(BadResponse, match="TEXT"):
        await backend(glif, http, clock, glif_id="glif-text").generate(REQ)


@pytest.mark.parametrize(
    ("glif_id", "model"),
    [
        ("glif-flux-dev", "Flux Dev"),
        ("glif-dalle", "DALL-E 3"),
        ("glif-sd3", "Stable Diffusion 3"),
        ("glif-flux-pro", "Flux Pro"),
        ("glif-nests-forbidden", "Flux Dev"),
        ("glif-deep-forbidden", "Stable Diffusion 3"),
    ],
)
async def test_forbidden_model_is_refused_before_running(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock, glif_id: str, model: str
) -> None:
    """A glif using a forbidden model, directly, in a ComfyBlock or in a nested glif, never
    runs, and the message names the model, the glif and the way out."""
    with pytest.raises(ForbiddenModel, match=model) as info:
        await backend(glif, http, clock, glif_id=glif_id).generate(REQ)
    assert glif.state.runs == []
    assert glif_id in str(info.value) and "check_models = false" in str(info.value)
    assert isinstance(info.value, Rejected) and not isinstance(info.value, ContentRejected)


async def test_schnell_glif_passes_the_screen_and_runs(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """FLUX schnell (here inside a ComfyBlock) is allowed: the screen passes and the glif runs."""
    image = await backend(glif, http, clock, glif_id="glif-schnell").generate(REQ)
    assert image.url and glif.state.metadata_requests == ["glif-schnell"]
    assert len(glif.state.runs) == 1


async def test_answer_cut_mid_body_is_retried(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """A run whose answer breaks off half-way is retried (a free run); the retry succeeds."""
    glif.state.faults.arm("cut")
    image = await backend(glif, http, clock).generate(REQ)
    assert image.url and len(glif.state.faults._queue) == 0


async def test_answer_always_cut_is_unavailable(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """Answers that always break off give up as Unavailable after the retries."""
    glif.state.faults.always("cut")
    with pytest.raises(Unavailable, match="dropped"):
        await backend(glif, http, clock).generate(REQ)


async def test_cyclic_nesting_terminates_and_passes(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """Glifs that nest each other are each fetched once and a clean cycle runs."""
    image = await backend(glif, http, clock, glif_id="glif-cycle-a").generate(REQ)
    assert image.url
    assert sorted(glif.state.metadata_requests) == ["glif-cycle-a", "glif-cycle-b"]


async def test_screen_verdict_is_cached_per_glif(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """Two runs fetch the glif's metadata once; a refusal is remembered too."""
    clean = backend(glif, http, clock)
    await clean.generate(REQ)
    await clean.generate(REQ)
    assert glif.state.metadata_requests == ["glif-schnell"]
    dirty = backend(glif, http, clock, glif_id="glif-nests-forbidden")
    for _ in range(2):
        with pytest.raises(ForbiddenModel):
            await dirty.generate(REQ)
    assert glif.state.metadata_requests.count("glif-nests-forbidden") == 1
    assert glif.state.metadata_requests.count("glif-flux-dev") == 1


async def test_screen_can_be_switched_off(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """check_models = false runs the glif without fetching its metadata."""
    await backend(glif, http, clock, glif_id="glif-flux-dev", check_models=False).generate(REQ)
    assert glif.state.metadata_requests == []
    assert len(glif.state.runs) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flux1-dev-fp8.safetensors", {"Flux Dev"}),
        ("FLUX.1 [dev]", {"Flux Dev"}),
        ("black-forest-labs/FLUX.1-pro", {"Flux Pro"}),
        ("flux-pro-1.1-ultra", {"Flux Pro"}),
        ("sd3_medium_incl_clips.safetensors", {"Stable Diffusion 3"}),
        ("stable-diffusion-3.5-large", {"Stable Diffusion 3"}),
        ("DALL·E 3", {"DALL-E 3"}),
        ("dalle3", {"DALL-E 3"}),
        ("flux1-schnell.safetensors", set()),
        ("FLUX.1 [schnell]", set()),
        ("sdxl_base_1.0", set()),
        ("dall-e-2", set()),
        ("a flux of developers, pro tip", set()),
    ],
)
def test_model_screen_patterns(text: str, expected: set[str]) -> None:
    """The screen spots forbidden model names in any spelling, and lets schnell through."""
    assert forbidden_models_in({"params": {"value": text}}) == expected


async def test_check_reads_credits_and_screens(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """check() passes for a good token and glif, and fails on credits, token or model."""
    await backend(glif, http, clock).check()
    with pytest.raises(ForbiddenModel):
        await backend(glif, http, clock, glif_id="glif-flux-dev").check()
    with pytest.raises(Unauthorized):
        await backend(glif, http, clock, token="wrong-token-abcdef").check()
    glif.state.credits = 0
    with pytest.raises(RateLimited):
        await backend(glif, http, clock).check()


async def test_metadata_outage_is_unavailable(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """If the screen cannot fetch the glif (5xx), the run fails as Unavailable and never runs."""
    glif.state.faults.arm("metadata", status=502, times=3)
    with pytest.raises(Unavailable):
        await backend(glif, http, clock).generate(REQ)
    assert glif.state.runs == []


async def test_emulator_accepts_the_id_in_the_path(glif: Glif, http: httpx.AsyncClient) -> None:
    """POST /{id} with only inputs works like POST / with an id (the emulator's own contract)."""
    r = await http.post(
        f"{glif.url}/glif-schnell",
        json={"inputs": ["x"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 200 and r.json()["outputFull"]["type"] == "IMAGE"


def test_image_is_taken_from_output_full_else_output(
    glif: Glif, http: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    """outputFull (type IMAGE) wins; without it the output URL is used; a data: URL becomes
    bytes; a run with neither is a BadResponse."""
    b = backend(glif, http, clock)
    full = b._image_from(
        {
            "output": "https://res.example/old.png",
            "outputFull": {"type": "IMAGE", "value": "https://res.example/full.png", "width": 8},
        }
    )
    assert full == {"url": "https://res.example/full.png", "width": 8, "height": None}
    bare = b._image_from({"output": "https://res.example/only.png", "outputFull": {}})
    assert bare["url"] == "https://res.example/only.png"
    png = "iVBORw0KGgo="  # the PNG signature, base64
    inline = b._image_from({"output": f"data:image/png;base64,{png}"})
    assert inline["data"] == b"\x89PNG\r\n\x1a\n" and inline["mime_type"] == "image/png"
    with pytest.raises(BadResponse, match="no output"):
        b._image_from({"output": None, "outputFull": None})
