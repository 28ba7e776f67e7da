"""The OpenAI images backend through the real openai SDK, pointed at the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from glimpse_agent.clock import SimulatedClock
from glimpse_agent.config import OpenAIImagesSection
from glimpse_agent.errors import (
    BadResponse,
    ContentRejected,
    RateLimited,
    Rejected,
    Unauthorized,
    Unavailable,
)
from glimpse_agent.imaging import costs
from glimpse_agent.imaging.backends.openai_images import OpenAIImagesBackend, size_for
from glimpse_agent.imaging.base import ImageRequest
from glimpse_agent.imaging.prepare import sniff_mime
from glimpse_agent.sandbox.images.faults import Faults
from glimpse_agent.sandbox.images.openai import (
    API_KEY,
    OpenAIImagesState,
)

REQ = ImageRequest(prompt="a cat sorcerer", persona="aurora")


@pytest.fixture
def oa(oa_server: tuple[Starlette, str]) -> Iterator[tuple[OpenAIImagesState, str]]:
    app, url = oa_server
    state: OpenAIImagesState = app.state.openai_images
    # The routes are bound to this state object: give it fresh parts for each test.
    state.faults, state.requests, state.keys = Faults(), [], {API_KEY}
    yield state, url
    state.faults.release()


@pytest.fixture
async def make(oa: tuple[OpenAIImagesState, str], clock: SimulatedClock) -> AsyncIterator[Any]:
    made: list[OpenAIImagesBackend] = []

    def factory(**overrides: Any) -> OpenAIImagesBackend:
        values: dict[str, Any] = {"api_key": API_KEY, "base_url": f"{oa[1]}/v1", "timeout": 5}
        values.update(overrides)
        backend = OpenAIImagesBackend(OpenAIImagesSection.model_validate(values), clock=clock)
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        await backend.aclose()


async def test_generate_decodes_b64_json(oa: tuple[OpenAIImagesState, str], make: Any) -> None:
    """model, prompt, size, quality and n=1 are sent; b64_json comes back as PNG bytes."""
    image = await make().generate(REQ)
    assert image.data is not None and sniff_mime(image.data) == "image/png"
    assert (image.width, image.height) == (1024, 1024)
    assert image.model == "gpt-image-1.5" and image.cost_usd == costs.openai_cost(
        "gpt-image-1.5", "medium", "1024x1024"
    )
    assert oa[0].requests == [
        {
            "model": "gpt-image-1.5",
            "prompt": "a cat sorcerer",
            "n": 1,
            "size": "1024x1024",
            "quality": "medium",
        }
    ]


async def test_request_shape_picks_the_nearest_size(
    oa: tuple[OpenAIImagesState, str], make: Any
) -> None:
    """A landscape request asks for 1536x1024 and is priced as such."""
    image = await make().generate(ImageRequest(prompt="wide", width=1600, height=900))
    assert oa[0].requests[0]["size"] == "1536x1024"
    assert (image.width, image.height) == (1536, 1024)
    assert image.cost_usd == costs.openai_cost("gpt-image-1.5", "medium", "1536x1024")


def test_size_for_keeps_the_configured_size_without_hints() -> None:
    """Without width and height the configured size is used."""
    assert size_for(ImageRequest(prompt="x"), "1024x1536") == "1024x1536"
    assert size_for(ImageRequest(prompt="x", width=600, height=900), "1024x1024") == "1024x1536"


async def test_429_is_retried_once_after_retry_after(
    oa: tuple[OpenAIImagesState, str], make: Any, clock: SimulatedClock
) -> None:
    """A RateLimitError with Retry-After: 2 is retried after 2 s of the injected clock."""
    oa[0].faults.arm("status", status=429, retry_after=2)
    before = clock.now()
    assert (await make().generate(REQ)).data
    assert (clock.now() - before).total_seconds() == 2


async def test_persistent_429_is_rate_limited(oa: tuple[OpenAIImagesState, str], make: Any) -> None:
    """429s on both tries surface as RateLimited with retry_after."""
    oa[0].faults.always("status", status=429, retry_after=9)
    with pytest.raises(RateLimited) as info:
        await make().generate(REQ)
    assert info.value.retry_after == 9


async def test_no_quota_is_not_retried(oa: tuple[OpenAIImagesState, str], make: Any) -> None:
    """insufficient_quota is RateLimited(bucket="quota") at once: waiting will not refill it."""
    oa[0].faults.arm("quota", times=2)
    with pytest.raises(RateLimited) as info:
        await make().generate(REQ)
    assert info.value.bucket == "quota" and len(oa[0].faults._queue) == 1


async def test_server_error_is_retried_then_unavailable(
    oa: tuple[OpenAIImagesState, str], make: Any
) -> None:
    """A 500 is retried once; two in a row give Unavailable."""
    oa[0].faults.arm("status", status=500, times=2)
    with pytest.raises(Unavailable, match="500"):
        await make().generate(REQ)


async def test_timeout_is_unavailable_and_not_resent(
    oa: tuple[OpenAIImagesState, str], make: Any
) -> None:
    """APITimeoutError is Unavailable and the request is not sent again (it may be billed)."""
    oa[0].faults.arm("hang", seconds=5, times=2)
    with pytest.raises(Unavailable, match="no answer"):
        await make(timeout=0.05).generate(REQ)
    assert len(oa[0].faults._queue) == 1


async def test_connection_error_is_unavailable(make: Any) -> None:
    """APIConnectionError (nobody listening) is Unavailable."""
    with pytest.raises(Unavailable, match="cannot reach"):
        await make(base_url="http://127.0.0.1:9/v1").generate(REQ)


async def test_moderation_block_is_content_rejected(
    oa: tuple[OpenAIImagesState, str], make: Any
) -> None:
    """The safety system's 400 (moderation_blocked) is ContentRejected, and not sent again."""
    oa[0].faults.arm("moderation", times=2)
    with pytest.raises(ContentRejected, match="safety system"):
        await make().generate(REQ)
    assert len(oa[0].faults._queue) == 1


async def test_wrong_key_is_unauthorized(make: Any) -> None:
    """An unknown key: AuthenticationError -> Unauthorized, and the key is not in the message."""
    with pytest.raises(Unauthorized) as info:
        await make(api_key="sk-wrong-wrong-wrong").generate(REQ)
    assert "sk-wrong" not in str(info.value)


async def test_unknown_model_is_rejected(make: Any) -> None:
    """A model the API does not have: 404 -> Rejected (a configuration failure)."""
    with pytest.raises(Rejected, match="does not exist") as info:
        await make(model="gpt-image-9").generate(REQ)
    assert not isinstance(info.value, ContentRejected)


async def test_emulator_refuses_retired_models_and_bad_sizes(
    oa: tuple[OpenAIImagesState, str],
) -> None:
    """The emulator answers 404 for dall-e-3 / gpt-image-1 and 400 for a bad size or n."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    url = f"{oa[1]}/v1/images/generations"
    async with httpx.AsyncClient(verify=False) as http:
        for model in ("dall-e-3", "gpt-image-1"):
            r = await http.post(url, json={"model": model, "prompt": "x"}, headers=headers)
            assert r.status_code == 404 and "deprecated" in r.json()["error"]["message"]
        r = await http.post(
            url, json={"model": "gpt-image-2", "prompt": "x", "size": "512x512"}, headers=headers
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "size"
        r = await http.post(
            url, json={"model": "gpt-image-2", "prompt": "x", "n": 11}, headers=headers
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "n"


async def test_check_retrieves_the_model(make: Any) -> None:
    """check() passes for a good key and model; a wrong key is Unauthorized."""
    await make().check()
    with pytest.raises(Unauthorized):
        await make(api_key="sk-nope-nope-nope").check()
    with pytest.raises(Rejected):
        await make(model="gpt-image-9").check()


def test_costs_err_high() -> None:
    """Unknown quality/size price as the dearest; cost_usd overrides the table."""
    assert costs.openai_cost("gpt-image-2", "auto", "auto") == costs.openai_cost(
        "gpt-image-2", "high", "1536x1024"
    )
    assert costs.openai_cost("gpt-image-2", "low", "1024x1024", override=0.5) == 0.5


async def test_200_with_an_error_and_no_data_is_a_bad_response(
    oa: tuple[OpenAIImagesState, str], make: Any
) -> None:
    """HTTP 200 with an error object and no image: BadResponse, and not sent again."""
    oa[0].faults.arm("error_200", message="upstream failure", times=2)
    with pytest.raises(BadResponse):
        await make().generate(REQ)
    assert len(oa[0].faults._queue) == 1


async def test_answer_cut_mid_body_is_unavailable_and_not_resent(
    oa: tuple[OpenAIImagesState, str], make: Any
) -> None:
    """An answer that breaks off half-way may still be billed: Unavailable, not sent again."""
    oa[0].faults.arm("cut", times=2)
    with pytest.raises(Unavailable, match="dropped"):
        await make().generate(REQ)
    assert len(oa[0].faults._queue) == 1


def test_sdk_retries_are_off_and_the_timeout_finite(make: Any) -> None:
    """The SDK client never retries on its own and waits at most the section's timeout; the
    default model is a current one (not dall-e-3 or gpt-image-1)."""
    client = make(timeout=7)._get_client()
    assert client.max_retries == 0 and client.timeout == 7
    section = OpenAIImagesSection.model_validate({"api_key": API_KEY})
    assert section.model == "gpt-image-1.5" and section.timeout == 180.0
    for retired in ("dall-e-3", "gpt-image-1"):
        with pytest.raises(ValueError, match="retired"):
            OpenAIImagesSection.model_validate({"api_key": API_KEY, "model": retired})
